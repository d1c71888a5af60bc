import { type SQL, sql } from 'drizzle-orm';
import type { ChatTurn } from '../../ai';
import { type Database, rowsOf } from '../../db/client';
import {
  conversations,
  DEFAULT_TITLE,
  type FeedbackRating,
  type MessageRole,
  type MessageStatus,
  messages,
} from '../../db/schema';
import { batchedPerTurn } from '../../lib/batch';
import { retryUnlessDatabaseDown } from './message-writes';

/**
 * The message tree of a conversation (SPEC §12): each message follows its parent, a
 * branch is the path from a first message to a leaf, and the conversation's current
 * branch ends at its `current_message_id`. Every read walks parent links by primary
 * key (a branch of n messages is n index lookups) and finds siblings and children
 * through the (conversation_id, parent_id, created_at, id) index: nothing scans the
 * whole tree. `depth` (messages before it on its branch) lets a page of the branch
 * stop its walk at the page's first message, and gives the branch's length at once;
 * jump pointers (`jump_id`, `jump_depth`: Myers' skew-binary scheme, each message's
 * set from its parent's when it is stored) find a page's last message in O(log depth)
 * lookups, so a page of a 10,000-message branch reads about `limit` + 40 rows.
 */

/** A message as read from the tree, with what the API shows about its place in it. */
export interface MessageRow {
  id: string;
  conversationId: string;
  parentId: string | null;
  depth: number;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  promptTokens: number;
  completionTokens: number;
  feedbackRating: FeedbackRating | null;
  feedbackComment: string | null;
  createdAt: Date;
  /** Messages sharing its parent, itself included, oldest first. */
  siblingIds: string[];
}

/** What a reply needs of its conversation: its settings and the branch it answers. */
export interface ReplyContext {
  model: string | null;
  systemPrompt: string | null;
  currentMessageId: string | null;
  /** It still has the default title and its owner chose none: an automatic title may name it. */
  untitled: boolean;
  /** The newest turns of the branch, root first, ending at the message asked for. */
  turns: ChatTurn[];
}

type RawMessage = {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  depth: number;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  prompt_tokens: number;
  completion_tokens: number;
  feedback_rating: FeedbackRating | null;
  feedback_comment: string | null;
  created_at: string | Date;
  sibling_ids: string;
};

// The siblings of message `m`, as one text value (the same on both backends). Two
// branches, so each is an index range scan: `is not distinct from` would not be.
const SIBLINGS = sql.raw(`case when m.parent_id is null
    then (select string_agg(s.id::text, ',' order by s.created_at, s.id) from messages s
          where s.conversation_id = m.conversation_id and s.parent_id is null)
    else (select string_agg(s.id::text, ',' order by s.created_at, s.id) from messages s
          where s.conversation_id = m.conversation_id and s.parent_id = m.parent_id) end`);
const MESSAGE_COLUMNS = sql.raw(`m.id, m.conversation_id, m.parent_id, m.depth, m.role, m.content, m.status,
    m.prompt_tokens, m.completion_tokens, m.feedback_rating, m.feedback_comment, m.created_at`);

const toRow = (r: RawMessage): MessageRow => ({
  id: r.id,
  conversationId: r.conversation_id,
  parentId: r.parent_id,
  depth: Number(r.depth),
  role: r.role,
  content: r.content,
  status: r.status,
  promptTokens: Number(r.prompt_tokens),
  completionTokens: Number(r.completion_tokens),
  feedbackRating: r.feedback_rating,
  feedbackComment: r.feedback_comment,
  createdAt: new Date(r.created_at),
  siblingIds: r.sibling_ids ? r.sibling_ids.split(',') : [r.id],
});

interface ContextWanted {
  conversationId: string;
  /** Where the branch ends: a message id, null (nothing: a first message), or the current one. */
  tip: string | null | 'current';
  limit: number;
}

/**
 * `context`: a reply's settings and branch, the reads of one turn in one statement
 * (each walk stops after its `limit` turns). Undefined when the conversation is gone.
 */
const contextReader = (db: Database) => {
  const read = batchedPerTurn(async (wanted: ContextWanted[]) => {
    const rows = rowsOf<{
      k: number;
      model: string | null;
      system_prompt: string | null;
      current_message_id: string | null;
      untitled: boolean;
      role: MessageRole | null;
      content: string | null;
    }>(
      await db.execute(sql`
        with recursive wanted as (
          select * from json_to_recordset(${JSON.stringify(
            wanted.map((w, k) => ({
              k,
              conversation_id: w.conversationId,
              tip: w.tip === 'current' ? null : w.tip,
              current: w.tip === 'current',
              lim: w.limit,
            })),
          )}::json) as w(k integer, conversation_id uuid, tip uuid, current boolean, lim integer)
        ),
        start as (
          select w.k, w.lim, c.model, c.system_prompt, c.current_message_id,
                 not c.title_set and c.title = ${DEFAULT_TITLE} as untitled,
                 case when w.current then c.current_message_id else w.tip end as tip
          from wanted w join ${conversations} c on c.id = w.conversation_id
        ),
        walk as (
          select s.k, 1 as n, m.parent_id, m.role, m.content
          from start s join ${messages} m on m.id = s.tip
          union all
          select w.k, w.n + 1, m.parent_id, m.role, m.content
          from walk w join start s on s.k = w.k join ${messages} m on m.id = w.parent_id
          where w.n < s.lim
        )
        select s.k, s.model, s.system_prompt, s.current_message_id, s.untitled, w.role, w.content
        from start s left join walk w on w.k = s.k
        order by s.k, w.n desc`),
    );
    const found = new Map<number, ReplyContext>();
    for (const r of rows) {
      let context = found.get(r.k);
      if (!context) {
        context = {
          model: r.model,
          systemPrompt: r.system_prompt,
          currentMessageId: r.current_message_id,
          untitled: r.untitled,
          turns: [],
        };
        found.set(r.k, context);
      }
      if (r.role !== null && r.content !== null) context.turns.push({ role: r.role, content: r.content });
    }
    return wanted.map((_, k) => found.get(k));
  }, retryUnlessDatabaseDown);
  return (conversationId: string, tip: ContextWanted['tip'], limit: number) =>
    read({ conversationId, tip, limit });
};

const selectMessages = async (db: Database, query: SQL) =>
  rowsOf<RawMessage>(await db.execute(query)).map(toRow);

/** SQL for the messages of conversations whose owner the caller has already checked. */
export const messageQueries = (db: Database) => ({
  /**
   * A reply's settings and the newest `limit` turns of the branch ending at `tip`
   * (root first), read with any other conversation's at the same moment.
   */
  context: contextReader(db),

  /** One message of the conversation, or undefined (another conversation's too). */
  message: async (conversationId: string, messageId: string) =>
    (
      await selectMessages(
        db,
        sql`select ${MESSAGE_COLUMNS}, ${SIBLINGS} as sibling_ids from ${messages} m
            where m.id = ${messageId} and m.conversation_id = ${conversationId}`,
      )
    )[0],

  /** Messages by id, whatever their conversation (the caller checked the owner). */
  byIds: async (ids: string[]) =>
    ids.length === 0
      ? []
      : selectMessages(
          db,
          sql`select ${MESSAGE_COLUMNS}, ${SIBLINGS} as sibling_ids from ${messages} m
              where m.id in (select value::uuid from json_array_elements_text(${JSON.stringify(ids)}::json))`,
        ),

  /**
   * A page of the current branch, root first, and the branch's length. The walk up
   * from its last message stops at the page's first.
   */
  branch: async (conversationId: string, limit: number, offset: number) => {
    // The page's last message is found from the branch's last by jump pointers
    // (O(log depth) lookups), then the page is walked up from it by parent links.
    const last = offset + limit - 1;
    const [items, [tip]] = await Promise.all([
      selectMessages(
        db,
        sql`with recursive seek as (
              select m.id, m.parent_id, m.depth, m.jump_id, m.jump_depth
              from ${messages} m join ${conversations} c on c.current_message_id = m.id
              where c.id = ${conversationId} and m.conversation_id = ${conversationId}
              union all
              select m.id, m.parent_id, m.depth, m.jump_id, m.jump_depth
              from seek s join ${messages} m
                on m.id = case when s.jump_depth >= ${last}::bigint then s.jump_id else s.parent_id end
              where s.depth > ${last}::bigint
            ),
            page as (
              select m.* from ${messages} m
              where m.id = (select id from seek order by depth limit 1)
              union all
              select m.* from ${messages} m join page p on m.id = p.parent_id where p.depth > ${offset}::bigint
            )
            select ${MESSAGE_COLUMNS}, ${SIBLINGS} as sibling_ids from page m
            where m.depth >= ${offset}::bigint
            order by m.depth`,
      ),
      db
        .execute(sql`select m.depth from ${conversations} c join ${messages} m on m.id = c.current_message_id
            where c.id = ${conversationId}`)
        .then((result) => rowsOf<{ depth: number }>(result)),
    ]);
    return { items, count: tip ? Number(tip.depth) + 1 : 0 };
  },

  /**
   * Makes the branch through `messageId` current, ending at its most recently created
   * descendant (itself when it has none). Undefined when it is not a message of the
   * conversation; otherwise the new last message's id.
   */
  switchBranch: async (conversationId: string, messageId: string) => {
    const [row] = rowsOf<{ current_message_id: string }>(
      await db.execute(sql`with recursive below as (
            select id, created_at from ${messages} where id = ${messageId} and conversation_id = ${conversationId}
            union all
            select m.id, m.created_at from ${messages} m join below b on m.parent_id = b.id
            where m.conversation_id = ${conversationId}
          ),
          newest as (select id from below order by created_at desc, id desc limit 1)
          update ${conversations} set current_message_id = (select id from newest), updated_at = now()
          where id = ${conversationId} and exists (select 1 from newest)
          returning current_message_id`),
    );
    return row?.current_message_id;
  },

  /** Replaces an answer's feedback (null: none); undefined when it is not a message of the conversation. */
  setFeedback: async (
    conversationId: string,
    messageId: string,
    feedback: { rating: FeedbackRating; comment: string | null } | null,
  ) =>
    (
      await selectMessages(
        db,
        sql`with changed as (
              update ${messages} set feedback_rating = ${feedback?.rating ?? null},
                                     feedback_comment = ${feedback?.comment ?? null}
              where id = ${messageId} and conversation_id = ${conversationId} and role = 'assistant'
              returning *
            )
            select ${MESSAGE_COLUMNS}, ${SIBLINGS} as sibling_ids from changed m`,
      )
    )[0],
});

export const toMessageDto = (row: MessageRow) => ({
  id: row.id,
  role: row.role,
  content: row.content,
  status: row.status,
  created_at: row.createdAt.toISOString(),
  prompt_tokens: row.promptTokens,
  completion_tokens: row.completionTokens,
  parent_id: row.parentId,
  sibling_ids: row.siblingIds,
  feedback: row.feedbackRating ? { rating: row.feedbackRating, comment: row.feedbackComment } : null,
});

export type MessageDto = ReturnType<typeof toMessageDto>;
