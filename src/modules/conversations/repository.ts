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

/** The CTE that bumps a conversation's `updated_at` inside the statement storing a message. */
const bumped = (conversationId: string) =>
  sql`bumped as (update ${conversations} set updated_at = now() where ${conversations.id} = ${conversationId})`;

export interface NewMessage {
  conversationId: string;
  role: MessageRole;
  content: string;
  status?: MessageStatus;
  promptTokens?: number;
  completionTokens?: number;
}

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
   * Stores a message and bumps the conversation's `updated_at` in one statement (a
   * data-modifying CTE): one round trip instead of a four-statement transaction.
   * Returns the new message's id.
   */
  addMessage: async (message: NewMessage): Promise<string> => {
    const id = Bun.randomUUIDv7();
    await db.execute(sql`
      with ${bumped(message.conversationId)}
      insert into ${messages} (id, conversation_id, role, content, status, prompt_tokens, completion_tokens)
      values (${id}, ${message.conversationId}, ${message.role}, ${message.content}, ${message.status ?? 'complete'},
              ${message.promptTokens ?? 0}, ${message.completionTokens ?? 0})`);
    return id;
  },

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
