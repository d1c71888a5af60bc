import { and, asc, count, desc, eq, inArray, type Placeholder, sql } from 'drizzle-orm';
import { type Database, rowsOf } from '../../db/client';
import {
  conversations,
  type MessageRole,
  type MessageRow,
  type MessageStatus,
  messages,
} from '../../db/schema';
import { batchedPerTurn } from '../../lib/batch';
import { isDatabaseDown } from '../../lib/failures';

const conversationColumns = {
  id: conversations.id,
  title: conversations.title,
  createdAt: conversations.createdAt,
  updatedAt: conversations.updatedAt,
};

// Spelled out: drizzle drops table qualifiers in single-table selects, which would
// make `id` bind to messages.id inside the subquery.
const messageCountOf = (table: string) =>
  sql<number>`(select count(*) from "messages" m where m."conversation_id" = ${sql.identifier(table)}."id")::int`;

const owned = (userId: string | Placeholder, id: string | Placeholder) =>
  and(eq(conversations.id, id), eq(conversations.userId, userId));

export interface NewMessage {
  /** Chosen ahead when the id must be known before the row exists (a reply's chat.start). */
  id?: string;
  conversationId: string;
  role: MessageRole;
  content: string;
  status?: MessageStatus;
  promptTokens?: number;
  completionTokens?: number;
  /**
   * Whether the write bumps the conversation's `updated_at` (default true). A chat
   * reply bumps it when it is stored, not with the user's message: updating the
   * conversation row (a non-HOT update touching two indexes) was a third of that
   * statement's work, and the first token waits for it.
   */
  bumps?: boolean;
}

/**
 * Stores messages and bumps their conversations' `updated_at` (see `bumps`) in one
 * statement (a data-modifying CTE). The rows travel as one JSON parameter, so the
 * statement has one shape however many rows it carries and stays prepared.
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
          bumps: m.bumps ?? true,
        })),
      )}::json) as m(id uuid, conversation_id uuid, role varchar, content text, status varchar,
                     prompt_tokens integer, completion_tokens integer, bumps boolean)
    ),
    bumped as (
      update ${conversations} set updated_at = now()
      where ${conversations.id} in (select conversation_id from batch where bumps)
    )
    insert into ${messages} (id, conversation_id, role, content, status, prompt_tokens, completion_tokens)
    select id, conversation_id, role, content, status, prompt_tokens, completion_tokens from batch
    returning id, created_at`);

export interface StoredMessage {
  id: string;
  createdAt: Date;
}

/**
 * The newest `limit` messages of each conversation, newest first, in one statement
 * (a lateral join: each conversation's index scan stops after `limit` rows).
 */
const selectRecentMessages = (db: Database, conversationIds: string[], limit: number) => {
  const recent = db
    .select({
      role: messages.role,
      content: messages.content,
      createdAt: messages.createdAt,
      id: messages.id,
    })
    .from(messages)
    .where(eq(messages.conversationId, sql`wanted.id::uuid`))
    .orderBy(desc(messages.createdAt), desc(messages.id))
    .limit(limit)
    .as('recent');
  return db
    .select({ conversationId: sql<string>`wanted.id`, role: recent.role, content: recent.content })
    .from(sql`json_array_elements_text(${JSON.stringify(conversationIds)}::json) as wanted(id)`)
    .crossJoinLateral(recent)
    .orderBy(sql`wanted.id`, desc(recent.createdAt), desc(recent.id));
};

/** A failed batch is retried item by item, unless there is no database to blame them on. */
const retryUnlessDatabaseDown = (error: unknown) => !isDatabaseDown(error);

/** `addMessage`: each call's row joins the statement of its turn (see batchedPerTurn). */
const messageWriter = (db: Database) => {
  const write = batchedPerTurn(async (rows: (NewMessage & { id: string })[]) => {
    const stored = new Map(
      rowsOf<{ id: string; created_at: string | Date }>(await insertMessages(db, rows)).map((r) => [
        r.id,
        new Date(r.created_at),
      ]),
    );
    return rows.map((row): StoredMessage => ({ id: row.id, createdAt: stored.get(row.id) ?? new Date() }));
  }, retryUnlessDatabaseDown);
  return (message: NewMessage) => write({ ...message, id: message.id ?? Bun.randomUUIDv7() });
};

/** `touch`: the conversations of one turn are bumped in one statement (see batchedPerTurn). */
const conversationToucher = (db: Database) => {
  const touch = batchedPerTurn(async (ids: string[]) => {
    await db
      .update(conversations)
      .set({ updatedAt: sql`now()` })
      .where(inArray(conversations.id, [...new Set(ids)]));
    return ids.map(() => undefined);
  }, retryUnlessDatabaseDown);
  return (conversationId: string): Promise<void> => touch(conversationId);
};

/** `recentMessages`: the reads of one turn share one statement (see batchedPerTurn). */
const historyReader = (db: Database) => {
  const read = batchedPerTurn(async (wanted: { conversationId: string; limit: number }[]) => {
    const ids = [...new Set(wanted.map((w) => w.conversationId))];
    const rows = await selectRecentMessages(db, ids, Math.max(...wanted.map((w) => w.limit)));
    const newestFirst = new Map<string, { role: MessageRole; content: string }[]>();
    for (const { conversationId, role, content } of rows) {
      const list = newestFirst.get(conversationId);
      if (list) list.push({ role, content });
      else newestFirst.set(conversationId, [{ role, content }]);
    }
    // `slice` copies, so two reads of one conversation never share (or reverse) one list.
    return wanted.map((w) => (newestFirst.get(w.conversationId) ?? []).slice(0, w.limit).reverse());
  }, retryUnlessDatabaseDown);
  return (conversationId: string, limit: number) => read({ conversationId, limit });
};

/**
 * The reads every REST request or socket makes, built once: drizzle's query builder
 * costs ~24 µs of JavaScript per call, and with it a query took ~112 µs of client CPU
 * against ~26 prepared (bench/history.md). Parameters are `sql.placeholder`s.
 */
const preparedReads = (db: Database) => {
  const userId = sql.placeholder('userId');
  const id = sql.placeholder('id');
  const conversationId = sql.placeholder('conversationId');
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
    messages: db
      .select()
      .from(messages)
      .where(eq(messages.conversationId, conversationId))
      .orderBy(asc(messages.createdAt), asc(messages.id))
      .limit(limit)
      .offset(offset)
      .prepare('messages_page'),
    messageCount: db
      .select({ n: count() })
      .from(messages)
      .where(eq(messages.conversationId, conversationId))
      .prepare('messages_count'),
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

    /** Cheaper than `find` when only ownership matters (the WebSocket auth step). */
    isOwner: async (userId: string, id: string) => (await read.isOwner.execute({ userId, id })).length === 1,

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

    messages: (conversationId: string, limit: number, offset: number) =>
      page(
        read.messages.execute({ conversationId, limit, offset }),
        read.messageCount.execute({ conversationId }),
      ),

    /**
     * Stores a message and bumps the conversation's `updated_at` (unless `bumps` is
     * false), in one statement with any other messages written at the same moment.
     * Returns the new message's id and time.
     */
    addMessage: messageWriter(db),

    /** Bumps a conversation's `updated_at`, with any other bumped at the same moment. */
    touch: conversationToucher(db),

    /**
     * The newest `limit` messages of a conversation, oldest first (the model's context),
     * read in one statement with any other conversation's read at the same moment.
     */
    recentMessages: historyReader(db),
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
