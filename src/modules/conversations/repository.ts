import { and, count, desc, eq, type Placeholder, sql } from 'drizzle-orm';
import type { Database } from '../../db/client';
import { conversations } from '../../db/schema';
import { messageWrites } from './message-writes';
import { messageQueries } from './messages';
import { conversationSearch } from './search';

const conversationColumns = {
  id: conversations.id,
  title: conversations.title,
  titleSet: conversations.titleSet,
  model: conversations.model,
  systemPrompt: conversations.systemPrompt,
  currentMessageId: conversations.currentMessageId,
  createdAt: conversations.createdAt,
  updatedAt: conversations.updatedAt,
};

/** What an owner may change of a conversation (undefined: unchanged). */
export interface ConversationChanges {
  title?: string;
  model?: string | null;
  systemPrompt?: string | null;
}

// Spelled out: drizzle drops table qualifiers in single-table selects, which would
// make `id` bind to messages.id inside the subquery.
const messageCountOf = (table: string) =>
  sql<number>`(select count(*) from "messages" m where m."conversation_id" = ${sql.identifier(table)}."id")::int`;

const owned = (userId: string | Placeholder, id: string | Placeholder) =>
  and(eq(conversations.id, id), eq(conversations.userId, userId));

/**
 * The reads every REST request or socket makes, built once: drizzle's query builder
 * costs ~24 µs of JavaScript per call, and with it a query took ~112 µs of client CPU
 * against ~26 prepared (bench/history.md). Parameters are `sql.placeholder`s.
 */
const preparedReads = (db: Database) => {
  const userId = sql.placeholder('userId');
  const id = sql.placeholder('id');
  const limit = sql.placeholder('limit');
  const offset = sql.placeholder('offset');
  return {
    // The page is cut first and its rows counted after: a count in the page's own
    // select list would be computed for every row the offset skips too.
    list: (() => {
      const page = db
        .select(conversationColumns)
        .from(conversations)
        .where(eq(conversations.userId, userId))
        .orderBy(desc(conversations.updatedAt), desc(conversations.id))
        .limit(limit)
        .offset(offset)
        .as('page');
      return db
        .select({
          id: page.id,
          title: page.title,
          titleSet: page.titleSet,
          model: page.model,
          systemPrompt: page.systemPrompt,
          currentMessageId: page.currentMessageId,
          createdAt: page.createdAt,
          updatedAt: page.updatedAt,
          messageCount: messageCountOf('page'),
        })
        .from(page)
        .orderBy(desc(page.updatedAt), desc(page.id))
        .prepare('conversations_list');
    })(),
    count: db
      .select({ n: count() })
      .from(conversations)
      .where(eq(conversations.userId, userId))
      .prepare('conversations_count'),
    find: db
      .select({ ...conversationColumns, messageCount: messageCountOf('conversations') })
      .from(conversations)
      .where(owned(userId, id))
      .limit(1)
      .prepare('conversation_find'),
    isOwner: db
      .select({ id: conversations.id })
      .from(conversations)
      .where(owned(userId, id))
      .limit(1)
      .prepare('conversation_is_owner'),
    /** Any user's: for frames about a conversation whose sockets were checked already. */
    byId: db
      .select({ ...conversationColumns, messageCount: messageCountOf('conversations') })
      .from(conversations)
      .where(eq(conversations.id, id))
      .limit(1)
      .prepare('conversation_by_id'),
  };
};

/** A page of rows and the count of all of them, read side by side. */
const page = async <T>(items: Promise<T[]>, total: Promise<{ n: number }[]>) => {
  const [rows, [counted]] = await Promise.all([items, total]);
  return { items: rows, count: counted?.n ?? 0 };
};

/** SQL for conversations and their messages; every read is scoped to the owner. */
export const createConversationRepository = (db: Database) => {
  const read = preparedReads(db);
  return {
    list: (userId: string, limit: number, offset: number) =>
      page(read.list.execute({ userId, limit, offset }), read.count.execute({ userId })),

    find: async (userId: string, id: string) => (await read.find.execute({ userId, id }))[0],

    /** A conversation whatever its owner (see `byId`). */
    byId: async (id: string) => (await read.byId.execute({ id }))[0],

    /** Cheaper than `find` when only ownership matters (the WebSocket auth step). */
    isOwner: async (userId: string, id: string) => (await read.isOwner.execute({ userId, id })).length === 1,

    /** A title given here was chosen by the owner: no automatic title replaces it. */
    create: async (userId: string, changes: ConversationChanges) => {
      const [row] = await db
        .insert(conversations)
        .values({
          userId,
          ...(changes.title ? { title: changes.title, titleSet: true } : {}),
          model: changes.model ?? null,
          systemPrompt: changes.systemPrompt ?? null,
        })
        .returning({ id: conversations.id });
      if (!row) throw new Error('insert returned no row');
      return row.id;
    },

    /** Applies `changes` and bumps `updated_at`; false if not the owner's. */
    update: async (userId: string, id: string, changes: ConversationChanges) =>
      (
        await db
          .update(conversations)
          .set({
            updatedAt: sql`now()`,
            ...(changes.title ? { title: changes.title, titleSet: true } : {}),
            ...(changes.model !== undefined ? { model: changes.model } : {}),
            ...(changes.systemPrompt !== undefined ? { systemPrompt: changes.systemPrompt } : {}),
          })
          .where(owned(userId, id))
          .returning({ id: conversations.id })
      ).length === 1,

    /**
     * An automatic title, unless the owner chose one or another title came first: the
     * conversation as it now is, or undefined when not stored. It does not bump
     * `updated_at`: nobody wrote anything.
     */
    setAutomaticTitle: async (id: string, title: string, defaultTitle: string) =>
      (
        await db
          .update(conversations)
          .set({ title })
          .where(
            and(
              eq(conversations.id, id),
              eq(conversations.titleSet, false),
              eq(conversations.title, defaultTitle),
            ),
          )
          .returning({ ...conversationColumns, messageCount: messageCountOf('conversations') })
      )[0],

    remove: async (userId: string, id: string) =>
      (await db.delete(conversations).where(owned(userId, id)).returning({ id: conversations.id })).length ===
      1,

    search: conversationSearch(db),
    ...messageWrites(db),
    ...messageQueries(db),
  };
};

export type ConversationRepository = ReturnType<typeof createConversationRepository>;

type ConversationRow = NonNullable<Awaited<ReturnType<ConversationRepository['find']>>>;

export const toConversationDto = (row: ConversationRow) => ({
  id: row.id,
  title: row.title,
  created_at: row.createdAt.toISOString(),
  updated_at: row.updatedAt.toISOString(),
  message_count: row.messageCount,
  model: row.model,
  system_prompt: row.systemPrompt,
  current_message_id: row.currentMessageId,
});

export type ConversationDto = ReturnType<typeof toConversationDto>;
