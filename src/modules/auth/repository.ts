import { count, desc, eq, type SQL, sql } from 'drizzle-orm';
import type { Database } from '../../db/client';
import { containing } from '../../db/patterns';
import { type UserRow, users } from '../../db/schema';

/** What staff may change of a user (SPEC §13); undefined: unchanged. */
export interface UserChanges {
  isActive?: boolean;
  isStaff?: boolean;
  dailyTokenQuota?: number | null;
  dailyMessageQuota?: number | null;
}

export interface NewUser {
  username: string;
  email: string;
  passwordHash: string;
  isStaff?: boolean;
  isSuperuser?: boolean;
}

/** SQL for users; nothing above this file writes queries against the table. */
export const createUserRepository = (db: Database) => {
  // Every authenticated request and socket looks its user up: the query is built once
  // (drizzle's builder costs ~24 µs of JavaScript per call; see bench/history.md).
  const byId = db
    .select()
    .from(users)
    .where(eq(users.id, sql.placeholder('id')))
    .limit(1)
    .prepare('user_by_id');
  return {
    findById: async (id: string): Promise<UserRow | undefined> => (await byId.execute({ id }))[0],

    findByUsername: async (username: string): Promise<UserRow | undefined> =>
      (await db.select().from(users).where(sql`lower(${users.username}) = lower(${username})`).limit(1))[0],

    /** Which of username/email are already taken (case-insensitively). */
    taken: async (username: string, email: string) => {
      // Compared by the database's own lower(), the one its unique indexes use.
      const sameName = sql<boolean>`lower(${users.username}) = lower(${username})`;
      const sameEmail = sql<boolean>`lower(${users.email}) = lower(${email})`;
      const rows = await db
        .select({ username: sameName, email: sameEmail })
        .from(users)
        .where(sql`${sameName} or ${sameEmail}`);
      return { username: rows.some((r) => r.username), email: rows.some((r) => r.email) };
    },

    insert: async (user: NewUser): Promise<UserRow> => {
      const [row] = await db
        .insert(users)
        .values({
          username: user.username,
          email: user.email,
          password: user.passwordHash,
          isStaff: user.isStaff ?? false,
          isSuperuser: user.isSuperuser ?? false,
        })
        .returning();
      if (!row) throw new Error('insert returned no row');
      return row;
    },

    touchLastLogin: async (id: string) => {
      await db.update(users).set({ lastLogin: new Date() }).where(eq(users.id, id));
    },

    /** Stores a new password hash and moves the token generation on; returns the new generation. */
    changePassword: async (id: string, passwordHash: string) => {
      const [row] = await db
        .update(users)
        .set({ password: passwordHash, tokenGeneration: sql`${users.tokenGeneration} + 1` })
        .where(eq(users.id, id))
        .returning({ generation: users.tokenGeneration });
      return row?.generation;
    },

    /** A page of users, newest first; `q`: a case-insensitive substring of username or email. */
    list: async (q: string | undefined, limit: number, offset: number) => {
      const where: SQL | undefined =
        q === undefined
          ? undefined
          : sql`(${users.username} ilike ${containing(q)} or ${users.email} ilike ${containing(q)})`;
      const [items, [total]] = await Promise.all([
        db
          .select()
          .from(users)
          .where(where)
          .orderBy(desc(users.dateJoined), desc(users.id))
          .limit(limit)
          .offset(offset),
        db.select({ count: count() }).from(users).where(where),
      ]);
      return { items, count: total?.count ?? 0 };
    },

    /** Applies `changes`; the updated row, or undefined for an unknown id. */
    update: async (id: string, changes: UserChanges): Promise<UserRow | undefined> => {
      const set = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
      if (Object.keys(set).length === 0) return (await byId.execute({ id }))[0];
      return (await db.update(users).set(set).where(eq(users.id, id)).returning())[0];
    },

    /** Deletes a user; their conversations and messages go with them (cascade). */
    remove: async (id: string) =>
      (await db.delete(users).where(eq(users.id, id)).returning({ id: users.id })).length === 1,
  };
};

export type UserRepository = ReturnType<typeof createUserRepository>;

export const toUserDto = (row: UserRow) => ({
  id: row.id,
  username: row.username,
  email: row.email,
  date_joined: row.dateJoined.toISOString(),
});
