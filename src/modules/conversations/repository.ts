import { and, asc, count, desc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../db/client';
import {
  conversations,
  type MessageRole,
  type MessageRow,
  type MessageStatus,
  messages,
} from '../../db/schema';

const conversationColumns = {
  id: conversations.id,
  title: conversations.title,
  createdAt: conversations.createdAt,
  updatedAt: conversations.updatedAt,
  // Spelled out: drizzle drops table qualifiers in single-table selects, which would
  // make `id` bind to messages.id inside the subquery.
  messageCount: sql<number>`(select count(*) from "messages" m where m."conversation_id" = "conversations"."id")::int`,
};

const owned = (userId: string, id: string) => and(eq(conversations.id, id), eq(conversations.userId, userId));

export interface NewMessage {
  conversationId: string;
  role: MessageRole;
  content: string;
  status?: MessageStatus;
  promptTokens?: number;
  completionTokens?: number;
}

/**
 * Stores messages and bumps their conversations' `updated_at` in one statement (a
 * data-modifying CTE). The rows travel as one JSON parameter, so the statement has
 * one shape however many rows it carries and stays prepared.
 */
const insertMessages = async (db: Database, rows: (NewMessage & { id: string })[]) =>
  db.execute(sql`
    with batch as (
      select * from json_to_recordset(${JSON.stringify(
        rows.map((m) => ({
          id: m.id,
          conversation_id: m.conversationId,
          role: m.role,
          // A lone surrogate would make the JSON unreadable to PostgreSQL; a bound
          // text parameter turned it into U+FFFD, and so does this.
          content: m.content.toWellFormed(),
          status: m.status ?? 'complete',
          prompt_tokens: m.promptTokens ?? 0,
          completion_tokens: m.completionTokens ?? 0,
        })),
      )}::json) as m(id uuid, conversation_id uuid, role varchar, content text, status varchar,
                     prompt_tokens integer, completion_tokens integer)
    ),
    bumped as (
      update ${conversations} set updated_at = now()
      where ${conversations.id} in (select conversation_id from batch)
    )
    insert into ${messages} (id, conversation_id, role, content, status, prompt_tokens, completion_tokens)
    select id, conversation_id, role, content, status, prompt_tokens, completion_tokens from batch`);

/**
 * Message writes issued in the same turn of the event loop go out as one statement:
 * when 200 replies start or finish together that is one round trip and one commit
 * instead of 200; a lone write waits only for `setImmediate`. If a batch fails, each
 * of its messages is retried alone, so one bad row (a conversation deleted
 * meanwhile) fails only its own caller, with its own error.
 */
const createMessageWriter = (db: Database) => {
  type Pending = { row: NewMessage & { id: string }; resolve: () => void; reject: (error: unknown) => void };
  let queue: Pending[] = [];

  const flush = async () => {
    const batch = queue;
    queue = [];
    try {
      await insertMessages(
        db,
        batch.map((p) => p.row),
      );
      for (const p of batch) p.resolve();
    } catch (error) {
      if (batch.length === 1) return batch[0]?.reject(error);
      await Promise.all(batch.map((p) => insertMessages(db, [p.row]).then(p.resolve, p.reject)));
    }
  };

  return (message: NewMessage): Promise<string> => {
    const id = Bun.randomUUIDv7();
    return new Promise<void>((resolve, reject) => {
      if (queue.push({ row: { ...message, id }, resolve, reject }) === 1) setImmediate(flush);
    }).then(() => id);
  };
};

/** SQL for conversations and their messages; every read is scoped to the owner. */
export const createConversationRepository = (db: Database) => ({
  list: async (userId: string, limit: number, offset: number) => {
    const [items, [total]] = await Promise.all([
      db
        .select(conversationColumns)
        .from(conversations)
        .where(eq(conversations.userId, userId))
        .orderBy(desc(conversations.updatedAt), desc(conversations.id))
        .limit(limit)
        .offset(offset),
      db.select({ n: count() }).from(conversations).where(eq(conversations.userId, userId)),
    ]);
    return { items, count: total?.n ?? 0 };
  },

  find: async (userId: string, id: string) =>
    (await db.select(conversationColumns).from(conversations).where(owned(userId, id)).limit(1))[0],

  /** Cheaper than `find` when only ownership matters (the WebSocket auth step). */
  isOwner: async (userId: string, id: string) =>
    (await db.select({ id: conversations.id }).from(conversations).where(owned(userId, id)).limit(1))
      .length === 1,

  create: async (userId: string, title: string | undefined) => {
    const [row] = await db
      .insert(conversations)
      .values({ userId, ...(title ? { title } : {}) })
      .returning({ id: conversations.id });
    if (!row) throw new Error('insert returned no row');
    return row.id;
  },

  /** Renames (when a title is given) and bumps `updated_at`; false if not the owner's. */
  update: async (userId: string, id: string, title: string | undefined) =>
    (
      await db
        .update(conversations)
        .set({ updatedAt: sql`now()`, ...(title ? { title } : {}) })
        .where(owned(userId, id))
        .returning({ id: conversations.id })
    ).length === 1,

  remove: async (userId: string, id: string) =>
    (await db.delete(conversations).where(owned(userId, id)).returning({ id: conversations.id })).length ===
    1,

  messages: async (conversationId: string, limit: number, offset: number) => {
    const [items, [total]] = await Promise.all([
      db
        .select()
        .from(messages)
        .where(eq(messages.conversationId, conversationId))
        .orderBy(asc(messages.createdAt), asc(messages.id))
        .limit(limit)
        .offset(offset),
      db.select({ n: count() }).from(messages).where(eq(messages.conversationId, conversationId)),
    ]);
    return { items, count: total?.n ?? 0 };
  },

  /**
   * Stores a message and bumps the conversation's `updated_at`, in one statement with
   * any other messages written at the same moment. Returns the new message's id.
   */
  addMessage: createMessageWriter(db),

  /** The newest `limit` messages of a conversation, oldest first (the model's context). */
  recentMessages: async (conversationId: string, limit: number) => {
    const rows = await db
      .select({ role: messages.role, content: messages.content })
      .from(messages)
      .where(eq(messages.conversationId, conversationId))
      .orderBy(desc(messages.createdAt), desc(messages.id))
      .limit(limit);
    return rows.reverse();
  },
});

export type ConversationRepository = ReturnType<typeof createConversationRepository>;

type ConversationRow = NonNullable<Awaited<ReturnType<ConversationRepository['find']>>>;

export const toConversationDto = (row: ConversationRow) => ({
  id: row.id,
  title: row.title,
  created_at: row.createdAt.toISOString(),
  updated_at: row.updatedAt.toISOString(),
  message_count: row.messageCount,
});

export const toMessageDto = (row: MessageRow) => ({
  id: row.id,
  role: row.role,
  content: row.content,
  status: row.status,
  created_at: row.createdAt.toISOString(),
  prompt_tokens: row.promptTokens,
  completion_tokens: row.completionTokens,
});
