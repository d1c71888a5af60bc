import { type SQL, sql } from 'drizzle-orm';
import { type Database, PLANNED_PER_CALL, rowsOf } from '../../db/client';
import { containing } from '../../db/patterns';
import { conversations, messages } from '../../db/schema';
import { messageQueries } from './messages';

/**
 * Search over titles and message contents (SPEC §13). Every term must occur, as a
 * plain substring, case-insensitively (`%`, `_` and `\` escaped), in the title or in
 * one message. Messages are matched with LIKE on `content_folded` (the content
 * lower-cased, a generated column): where the index cannot help (terms under three
 * characters, e.g. most Chinese words) the scan is ~6× cheaper than ILIKE on the
 * content. Titles, short and few per user, use ILIKE. Both carry a pg_trgm GIN index,
 * on PostgreSQL and PGlite alike: it answers substrings in any script, CJK included,
 * where a full-text index would need words.
 */

// Characters of context before the first match, and the snippet's whole length.
const BEFORE = 40;
const SNIPPET = 160;

// The syntax characters only: in a Unicode-mode pattern any other escape is an error.
const escapeRegExp = (text: string) => text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');

/**
 * Plain text around the first place any term occurs in `text` (code points, never a
 * half of a surrogate pair), whitespace folded, with … where it was cut.
 */
export const snippetOf = (text: string, terms: string[]) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  const pattern = new RegExp(terms.map(escapeRegExp).join('|'), 'iu');
  const at = flat.search(pattern);
  const chars = Array.from(flat);
  // The match's position in code points.
  const start = at <= 0 ? 0 : Array.from(flat.slice(0, at)).length;
  const from = Math.max(0, Math.min(start - BEFORE, chars.length - SNIPPET));
  const to = Math.min(chars.length, from + SNIPPET);
  return `${from > 0 ? '…' : ''}${chars.slice(from, to).join('')}${to < chars.length ? '…' : ''}`;
};

/** A term the trigram index can serve: three letters or digits in a row (pg_trgm's words). */
const TRIGRAM = /[\p{L}\p{N}]{3}/u;

/** The terms of a query: whitespace-separated, each once. */
const termsOf = (q: string) => [...new Set(q.trim().split(/\s+/).filter(Boolean))];

/** A matching conversation, as the repository's reads give one. */
interface FoundConversation {
  id: string;
  title: string;
  titleSet: boolean;
  model: string | null;
  systemPrompt: string | null;
  currentMessageId: string | null;
  createdAt: Date;
  updatedAt: Date;
  messageCount: number;
}

interface RawHit {
  id: string;
  title: string;
  title_set: boolean;
  model: string | null;
  system_prompt: string | null;
  current_message_id: string | null;
  created_at: string | Date;
  updated_at: string | Date;
  message_count: number | string;
  message_id: string | null;
}

const every = (column: SQL, patterns: string[], operator: 'like' | 'ilike') =>
  sql.join(
    // Folded by the same lower() as the column, whatever the term's script.
    patterns.map((pattern) =>
      operator === 'like' ? sql`${column} like lower(${pattern})` : sql`${column} ilike ${pattern}`,
    ),
    sql` and `,
  );

/**
 * The owner's conversations matching `q`, newest `updated_at` first, each with its
 * newest matching message (undefined when only the title matched).
 */
export const conversationSearch = (db: Database) => {
  const messageReads = messageQueries(db);

  /**
   * The matching conversations, each with its newest matching message id (or null).
   * When a term can use the trigram index, the index finds the matching messages and
   * the newest of each conversation is kept. When none can (every term shorter than
   * three letters or digits: `ab`, `天气`), the user's messages are read anyway; then
   * each conversation is read newest first and only up to its first match, which for
   * a common short term is a few messages of each (bench/history.md).
   */
  const matches = (userId: string, patterns: string[], indexed: boolean) => {
    const contentMatches = every(sql`m.content_folded`, patterns, 'like');
    const titleMatches = every(sql`c.title`, patterns, 'ilike');
    if (!indexed)
      return sql`
        select c.id, c.updated_at, h.id as message_id
        from ${conversations} c left join lateral (
          select m.id from ${messages} m
          where m.conversation_id = c.id and ${contentMatches}
          order by m.created_at desc, m.id desc limit 1
        ) h on true
        where c.user_id = ${userId} and (h.id is not null or (${titleMatches}))`;
    return sql`
      with hits as (
        select distinct on (m.conversation_id) m.conversation_id, m.id
        from ${messages} m join ${conversations} c on c.id = m.conversation_id
        where c.user_id = ${userId} and ${contentMatches}
        order by m.conversation_id, m.created_at desc, m.id desc
      )
      select c.id, c.updated_at, h.id as message_id
      from ${conversations} c left join hits h on h.conversation_id = c.id
      where c.user_id = ${userId} and (h.id is not null or (${titleMatches}))`;
  };

  return async (userId: string, q: string, limit: number, offset: number) => {
    const terms = termsOf(q);
    const patterns = terms.map(containing);
    const indexed = terms.some((term) => TRIGRAM.test(term));
    // Matched once, then counted and cut into the page; message counts only for its rows.
    const rows = rowsOf<RawHit & { total: number | string }>(
      await db.execute(sql`${PLANNED_PER_CALL}
        with matched as materialized (${matches(userId, patterns, indexed)}),
        page as (
          select * from matched order by updated_at desc, id desc limit ${limit} offset ${offset}
        )
        select c.id, c.title, c.title_set, c.model, c.system_prompt, c.current_message_id,
               c.created_at, c.updated_at, p.message_id,
               (select count(*) from ${messages} x where x.conversation_id = c.id)::int as message_count,
               (select count(*) from matched)::int as total
        from page p join ${conversations} c on c.id = p.id
        order by c.updated_at desc, c.id desc`),
    );
    // A page past the end has no row to carry the total.
    const counted = rows[0]
      ? Number(rows[0].total)
      : offset > 0
        ? Number(
            rowsOf<{ n: number | string }>(
              await db.execute(
                sql`${PLANNED_PER_CALL} select count(*)::int as n from (${matches(userId, patterns, indexed)}) m`,
              ),
            )[0]?.n ?? 0,
          )
        : 0;
    const found = new Map(
      (await messageReads.byIds(rows.flatMap((row) => (row.message_id ? [row.message_id] : [])))).map(
        (message) => [message.id, message],
      ),
    );
    return {
      items: rows.map((row) => {
        const conversation: FoundConversation = {
          id: row.id,
          title: row.title,
          titleSet: row.title_set,
          model: row.model,
          systemPrompt: row.system_prompt,
          currentMessageId: row.current_message_id,
          createdAt: new Date(row.created_at),
          updatedAt: new Date(row.updated_at),
          messageCount: Number(row.message_count),
        };
        const message = row.message_id ? found.get(row.message_id) : undefined;
        return { conversation, message, snippet: snippetOf(message?.content ?? row.title, terms) };
      }),
      count: counted,
    };
  };
};
