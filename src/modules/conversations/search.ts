import { type SQL, sql } from 'drizzle-orm';
import { type Database, rowsOf } from '../../db/client';
import { containing } from '../../db/patterns';
import { conversations, messages } from '../../db/schema';
import { messageQueries } from './messages';
import type { ConversationRow } from './repository';

/**
 * Search over titles and message contents (SPEC §13). Every term must occur, as a
 * plain substring, case-insensitively (ILIKE, with `%`, `_` and `\` escaped), in the
 * title or in one message. Both columns carry a pg_trgm GIN index, on PostgreSQL and
 * PGlite alike: it answers substring patterns of any script, CJK included, where a
 * full-text index would need words.
 */

// Characters of context before the first match, and the snippet's whole length.
const BEFORE = 40;
const SNIPPET = 160;

const escapeRegExp = (text: string) => text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');

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

/** The terms of a query: whitespace-separated, each once. */
export const termsOf = (q: string) => [...new Set(q.trim().split(/\s+/).filter(Boolean))];

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

const every = (column: SQL, patterns: string[]) =>
  sql.join(
    patterns.map((pattern) => sql`${column} ilike ${pattern}`),
    sql` and `,
  );

/**
 * The owner's conversations matching `q`, newest `updated_at` first, each with its
 * newest matching message (undefined when only the title matched).
 */
export const conversationSearch = (db: Database) => {
  const messageReads = messageQueries(db);

  const matches = (userId: string, patterns: string[]) => sql`
    with hits as (
      select distinct on (m.conversation_id) m.conversation_id, m.id
      from ${messages} m join ${conversations} c on c.id = m.conversation_id
      where c.user_id = ${userId} and ${every(sql`m.content`, patterns)}
      order by m.conversation_id, m.created_at desc, m.id desc
    )
    select c.*, h.id as message_id
    from ${conversations} c left join hits h on h.conversation_id = c.id
    where c.user_id = ${userId} and (h.id is not null or (${every(sql`c.title`, patterns)}))`;

  return async (userId: string, q: string, limit: number, offset: number) => {
    const terms = termsOf(q);
    const patterns = terms.map(containing);
    // The page first; message counts only for its rows.
    const [rows, counted] = await Promise.all([
      db
        .execute(sql`
          select p.id, p.title, p.title_set, p.model, p.system_prompt, p.current_message_id,
                 p.created_at, p.updated_at, p.message_id,
                 (select count(*) from ${messages} x where x.conversation_id = p.id)::int as message_count
          from (${matches(userId, patterns)} order by c.updated_at desc, c.id desc
                limit ${limit} offset ${offset}) p
          order by p.updated_at desc, p.id desc`)
        .then((result) => rowsOf<RawHit>(result)),
      db
        .execute(sql`select count(*)::int as n from (${matches(userId, patterns)}) m`)
        .then((result) => Number(rowsOf<{ n: number | string }>(result)[0]?.n ?? 0)),
    ]);
    const found = new Map(
      (await messageReads.byIds(rows.flatMap((row) => (row.message_id ? [row.message_id] : [])))).map(
        (message) => [message.id, message],
      ),
    );
    return {
      items: rows.map((row) => {
        const conversation: ConversationRow = {
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
