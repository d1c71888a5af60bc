import { sql } from 'drizzle-orm';
import { type Database, rowsOf } from '../../db/client';
import { conversations, type MessageRole, type MessageStatus, messages } from '../../db/schema';
import { batchedPerTurn } from '../../lib/batch';
import { isDatabaseDown } from '../../lib/failures';

/**
 * Storing messages in the tree (see messages.ts): each with its parent, depth and jump
 * pointer, the conversation's current branch moved to it. Writes of one turn of the
 * event loop share one statement (batchedPerTurn).
 */

interface NewMessage {
  /** Chosen ahead when the id must be known before the row exists (a reply's chat.start). */
  id?: string;
  conversationId: string;
  /** The message it follows: null for a first message; absent, the current branch's last. */
  parentId?: string | null;
  role: MessageRole;
  content: string;
  status?: MessageStatus;
  promptTokens?: number;
  completionTokens?: number;
  /**
   * Whether the write bumps the conversation's `updated_at` (default true). A chat
   * reply bumps it when it is stored, not with the user's message: updating the
   * indexed `updated_at` (a non-HOT update touching two indexes) was a third of that
   * statement's work, and the first token waits for it.
   */
  bumps?: boolean;
  /** Whether the current branch now ends here (default true). */
  advances?: boolean;
}

interface StoredMessage {
  id: string;
  createdAt: Date;
}

/**
 * Stores messages, moves their conversations' current branch to them (`advances`) and
 * bumps `updated_at` (`bumps`), in one statement (a data-modifying CTE). The rows
 * travel as one JSON parameter, so the statement has one shape however many rows it
 * carries and stays prepared. Setting only `current_message_id`, which no index
 * covers, leaves the conversation row's update a cheap in-page (HOT) one.
 */
const insertMessages = (db: Database, rows: (NewMessage & { id: string })[]) =>
  db.execute(sql`
    with batch as (
      select * from json_to_recordset(${JSON.stringify(
        rows.map((m, n) => ({
          n,
          id: m.id,
          conversation_id: m.conversationId,
          parent_id: m.parentId ?? null,
          follows_current: m.parentId === undefined,
          role: m.role,
          // A lone surrogate would make the JSON unreadable to PostgreSQL; a bound
          // text parameter turned it into U+FFFD, and so does this.
          content: m.content.toWellFormed(),
          status: m.status ?? 'complete',
          prompt_tokens: m.promptTokens ?? 0,
          completion_tokens: m.completionTokens ?? 0,
          bumps: m.bumps ?? true,
          advances: m.advances ?? true,
        })),
      )}::json) as m(n integer, id uuid, conversation_id uuid, parent_id uuid, follows_current boolean,
                     role varchar, content text, status varchar, prompt_tokens integer,
                     completion_tokens integer, bumps boolean, advances boolean)
    ),
    placed as (
      select b.*, case when b.follows_current then c.current_message_id else b.parent_id end as parent
      from batch b left join ${conversations} c on c.id = b.conversation_id
    ),
    -- The parent and its jump target decide the new message's depth and jump pointer:
    -- when the parent's jump and its jump's jump span equal lengths, jump over both
    -- (a skew-binary chain), else jump to the parent. A first message jumps to itself.
    linked as (
      select l.*, p.depth + 1 as depth,
        case when l.parent is null then l.id
             when p.depth - p.jump_depth = p.jump_depth - pj.jump_depth then pj.jump_id
             else p.id end as jump,
        case when l.parent is null then 0
             when p.depth - p.jump_depth = p.jump_depth - pj.jump_depth then pj.jump_depth
             else p.depth end as jump_to
      from placed l
      left join ${messages} p on p.id = l.parent
      left join ${messages} pj on pj.id = p.jump_id
    ),
    -- Per conversation: the last row that moves its branch, and whether any bumps it
    -- (grouped once, so the update is a join, not a search of the batch per row).
    changes as (
      select conversation_id,
             (array_agg(id order by n desc) filter (where advances))[1] as last,
             bool_or(bumps) as bumps
      from batch where bumps or advances group by conversation_id
    ),
    moved as (
      update ${conversations} c set
        current_message_id = coalesce(x.last, c.current_message_id),
        updated_at = case when x.bumps then now() else c.updated_at end
      from changes x
      where c.id = x.conversation_id
    )
    insert into ${messages} (id, conversation_id, parent_id, depth, jump_id, jump_depth, role, content,
                             status, prompt_tokens, completion_tokens)
    -- A parent that is not there (its conversation deleted meanwhile) fails the foreign key.
    select id, conversation_id, parent, coalesce(depth, 0), coalesce(jump, id), coalesce(jump_to, 0), role,
           content, status, prompt_tokens, completion_tokens
    from linked order by n
    returning id, created_at`);

/** A failed batch is retried item by item, unless there is no database to blame them on. */
export const retryUnlessDatabaseDown = (error: unknown) => !isDatabaseDown(error);

/** `addMessage`: each call's row joins the statement of its turn (see batchedPerTurn). */
const messageWriter = (db: Database) => {
  type Row = NewMessage & { id: string };
  const insert = async (rows: Row[]) => {
    const stored = new Map(
      rowsOf<{ id: string; created_at: string | Date }>(await insertMessages(db, rows)).map((r) => [
        r.id,
        new Date(r.created_at),
      ]),
    );
    return rows.map((row): StoredMessage => ({ id: row.id, createdAt: stored.get(row.id) ?? new Date() }));
  };
  const write = batchedPerTurn(async (rows: Row[]): Promise<(StoredMessage | { failed: unknown })[]> => {
    // A row's parent must be stored before it: two rows following one conversation's
    // current branch (never a reply's, whose parents are named) go one after the other,
    // each failing alone.
    const following = rows.filter((r) => r.parentId === undefined).map((r) => r.conversationId);
    if (new Set(following).size === following.length) return insert(rows);
    const results: (StoredMessage | { failed: unknown })[] = [];
    for (const row of rows)
      results.push(
        await insert([row]).then(
          ([stored]) => stored as StoredMessage,
          (failed: unknown) => ({ failed }),
        ),
      );
    return results;
  }, retryUnlessDatabaseDown);
  return async (message: NewMessage): Promise<StoredMessage> => {
    const result = await write({ ...message, id: message.id ?? Bun.randomUUIDv7() });
    if ('failed' in result) throw result.failed;
    return result;
  };
};

/** `touch`: the conversations of one turn are bumped in one statement (see batchedPerTurn). */
const conversationToucher = (db: Database) => {
  const touch = batchedPerTurn(async (ids: string[]) => {
    await db.execute(sql`update ${conversations} set updated_at = now()
      where id in (select value::uuid from json_array_elements_text(${JSON.stringify([...new Set(ids)])}::json))`);
    return ids.map(() => undefined);
  }, retryUnlessDatabaseDown);
  return (conversationId: string): Promise<void> => touch(conversationId);
};

/** The writes of messages; the caller has checked the conversation's owner. */
export const messageWrites = (db: Database) => ({
  /**
   * Stores a message with its place in the tree, moves the current branch to it
   * (unless `advances` is false) and bumps `updated_at` (unless `bumps` is false), in
   * one statement with any other messages written at the same moment.
   */
  addMessage: messageWriter(db),

  /** Bumps a conversation's `updated_at`, with any other bumped at the same moment. */
  touch: conversationToucher(db),
});
