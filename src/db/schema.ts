import { sql } from 'drizzle-orm';
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  date,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';

const id = () =>
  uuid('id')
    .primaryKey()
    .$defaultFn(() => Bun.randomUUIDv7());
const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

export const users = pgTable(
  'users',
  {
    id: id(),
    username: varchar('username', { length: 150 }).notNull(),
    email: varchar('email', { length: 254 }).notNull(),
    password: text('password').notNull(),
    isActive: boolean('is_active').notNull().default(true),
    isStaff: boolean('is_staff').notNull().default(false),
    isSuperuser: boolean('is_superuser').notNull().default(false),
    dateJoined: timestamp('date_joined', { withTimezone: true }).notNull().defaultNow(),
    lastLogin: timestamp('last_login', { withTimezone: true }),
    /**
     * Tokens carry the generation they were issued in; a password change moves it on,
     * so every token issued before is refused without a blacklist entry per token.
     */
    tokenGeneration: integer('token_generation').notNull().default(0),
    /** The user's own daily limits, set by staff (SPEC §13); null: the `QUOTA_*` defaults, 0: none. */
    dailyTokenQuota: integer('daily_token_quota'),
    dailyMessageQuota: integer('daily_message_quota'),
  },
  (t) => [
    uniqueIndex('users_username_lower_key').on(sql`lower(${t.username})`),
    uniqueIndex('users_email_lower_key').on(sql`lower(${t.email})`),
    check('users_daily_token_quota_check', sql`${t.dailyTokenQuota} >= 0`),
    check('users_daily_message_quota_check', sql`${t.dailyMessageQuota} >= 0`),
  ],
);

/** A conversation's title until its owner or the model names it. */
export const DEFAULT_TITLE = 'New conversation';

export const conversations = pgTable(
  'conversations',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    title: varchar('title', { length: 255 }).notNull().default(DEFAULT_TITLE),
    /** The owner chose the title (POST or PATCH): an automatic title never replaces it. */
    titleSet: boolean('title_set').notNull().default(false),
    /** The model of its replies; null: `OPENAI_MODEL`. */
    model: varchar('model', { length: 200 }),
    /** null: `AI_SYSTEM_PROMPT`; empty: none. */
    systemPrompt: text('system_prompt'),
    /**
     * The last message of the current branch (SPEC §12); null when empty. Not a
     * foreign key: it would make the two tables refer to each other, and it is only
     * ever set to a message of the conversation, by the server.
     */
    currentMessageId: uuid('current_message_id'),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // The list's order, tie-break included, so a page at any offset is an index walk.
  (t) => [
    index('conversations_user_updated_id_idx').on(
      t.userId,
      t.updatedAt.desc().nullsFirst(),
      t.id.desc().nullsFirst(),
    ),
    // Search (SPEC §13): substrings of any script, case-insensitively (ILIKE).
    index('conversations_title_trgm_idx').using('gin', t.title.op('gin_trgm_ops')),
  ],
);

export const MESSAGE_ROLES = ['user', 'assistant'] as const;
export const MESSAGE_STATUSES = ['complete', 'interrupted', 'failed'] as const;
export const FEEDBACK_RATINGS = ['up', 'down'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];
export type FeedbackRating = (typeof FEEDBACK_RATINGS)[number];

export const messages = pgTable(
  'messages',
  {
    id: id(),
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    /** The message this one follows (SPEC §12); null for a first message. */
    parentId: uuid('parent_id').references((): AnyPgColumn => messages.id, { onDelete: 'cascade' }),
    /** How many messages come before it on its branch (0 for a first message). */
    depth: integer('depth').notNull().default(0),
    /**
     * An ancestor further up its branch (itself for a first message) and that
     * ancestor's depth: skew-binary jump pointers, so the ancestor at any depth is
     * found in O(log depth) steps (see conversations/messages.ts).
     */
    jumpId: uuid('jump_id'),
    jumpDepth: integer('jump_depth').notNull().default(0),
    role: varchar('role', { length: 16 }).$type<MessageRole>().notNull(),
    content: text('content').notNull(),
    /** `content` lower-cased, for search (SPEC §13): a plain LIKE on it is several times cheaper than ILIKE. */
    contentFolded: text('content_folded').notNull().generatedAlwaysAs(sql`lower(content)`),
    status: varchar('status', { length: 16 }).$type<MessageStatus>().notNull().default('complete'),
    promptTokens: integer('prompt_tokens').notNull().default(0),
    completionTokens: integer('completion_tokens').notNull().default(0),
    feedbackRating: varchar('feedback_rating', { length: 8 }).$type<FeedbackRating>(),
    feedbackComment: text('feedback_comment'),
    createdAt: createdAt(),
  },
  (t) => [
    index('messages_conversation_created_id_idx').on(t.conversationId, t.createdAt, t.id),
    // A message's siblings (and a root's, with parent_id is null) oldest first, and
    // its children when a branch switch walks down to the newest descendant.
    index('messages_conversation_parent_created_id_idx').on(t.conversationId, t.parentId, t.createdAt, t.id),
    index('messages_content_folded_trgm_idx').using('gin', t.contentFolded.op('gin_trgm_ops')),
    check('messages_role_check', sql`${t.role} in ('user', 'assistant')`),
    check('messages_status_check', sql`${t.status} in ('complete', 'interrupted', 'failed')`),
    check('messages_feedback_rating_check', sql`${t.feedbackRating} in ('up', 'down')`),
  ],
);

/**
 * What each user spent per UTC day (SPEC §13): accepted chat messages (regenerates
 * included), counted at admission, and the tokens of stored answers. Kept apart from
 * the messages, so deleting a conversation does not give a quota back.
 */
export const usageDays = pgTable(
  'usage_days',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    day: date('day', { mode: 'string' }).notNull(),
    messages: integer('messages').notNull().default(0),
    promptTokens: bigint('prompt_tokens', { mode: 'number' }).notNull().default(0),
    completionTokens: bigint('completion_tokens', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.userId, t.day] }), index('usage_days_day_idx').on(t.day)],
);

export type UserRow = typeof users.$inferSelect;
export type ConversationRow = typeof conversations.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;
