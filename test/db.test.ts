import { describe, expect, test } from 'bun:test';
import { existsSync, rmSync } from 'node:fs';
import { eq, sql } from 'drizzle-orm';
import { renderMigrationsModule } from '../scripts/embed-migrations';
import { type Database, rowsOf } from '../src/db/client';
import { lockDataDir } from '../src/db/data-dir-lock';
import { migrate } from '../src/db/migrate';
import { migrations as embedded } from '../src/db/migrations.gen';
import { findSeed } from '../src/db/pglite-seed';
import { users } from '../src/db/schema';
import { createConversationRepository } from '../src/modules/conversations/repository';
import { createTestDatabase, SERVICES, uniqueName } from './support/backends';

describe('migrations', () => {
  test('the embedded module matches drizzle/ (run `bun run db:generate` after changing the schema)', async () => {
    const embedded = await Bun.file(new URL('../src/db/migrations.gen.ts', import.meta.url)).text();
    expect(embedded).toBe(renderMigrationsModule(new URL('../drizzle', import.meta.url).pathname));
  });

  test('apply once: a second run applies nothing and concurrent runs do not collide', async () => {
    const database = await createTestDatabase();
    try {
      expect(await migrate(database.handle.db)).toBe(0);
      const results = await Promise.all([migrate(database.handle.db), migrate(database.handle.db)]);
      expect(results).toEqual([0, 0]);
    } finally {
      await database.drop();
    }
  });
});

/**
 * A database migrated to the first `applied` migrations, handed to `fill` to put rows
 * in as the old schema had them, then to `check` after the remaining migrations ran.
 */
const upgrade = async (
  applied: number,
  fill: (db: Database) => Promise<void>,
  check: (db: Database) => Promise<void>,
) => {
  const database = await createTestDatabase({ migrated: false });
  try {
    const { db } = database.handle;
    expect(await migrate(db, embedded.slice(0, applied))).toBe(applied);
    await fill(db);
    expect(await migrate(db)).toBe(embedded.length - applied);
    await check(db);
  } finally {
    await database.drop();
  }
};

describe('0001_page_indexes on a database filled by the previous schema', () => {
  test('keeps every row and replaces the page indexes with ones that end in the tie-break', async () => {
    const database = await createTestDatabase({ migrated: false });
    try {
      const { db } = database.handle;
      expect(await migrate(db, embedded.slice(0, 1))).toBe(1);
      const userId = crypto.randomUUID();
      await db.execute(
        sql`insert into users (id, username, email, password) values (${userId}, 'old', 'old@example.com', 'x')`,
      );
      await db.execute(sql`insert into conversations (id, user_id, title, updated_at)
        select gen_random_uuid(), ${userId}, 'c' || i, now() - i * interval '1 minute' from generate_series(1, 30) i`);
      await db.execute(sql`insert into messages (id, conversation_id, role, content)
        select gen_random_uuid(), c.id, 'user', 'm' || n from conversations c cross join generate_series(1, 3) n`);
      const before = rowsOf(
        await db.execute(sql`select id, title, updated_at from conversations order by id`),
      );

      expect(await migrate(db)).toBe(embedded.length - 1);

      expect(
        rowsOf(await db.execute(sql`select id, title, updated_at from conversations order by id`)),
      ).toEqual(before);
      const indexes = rowsOf<{ indexname: string; indexdef: string }>(
        await db.execute(
          sql`select indexname, indexdef from pg_indexes where tablename in ('conversations', 'messages') order by indexname`,
        ),
      ).map((r) => r.indexdef.replace(/ ON public\./, ' ON '));
      expect(indexes).toContain(
        'CREATE INDEX conversations_user_updated_id_idx ON conversations USING btree (user_id, updated_at DESC, id DESC)',
      );
      expect(indexes).toContain(
        'CREATE INDEX messages_conversation_created_id_idx ON messages USING btree (conversation_id, created_at, id)',
      );
      expect(indexes.some((d) => d.includes('conversations_user_updated_idx '))).toBe(false);
      const repo = createConversationRepository(db);
      const page = await repo.list(userId, 5, 10);
      expect(page.count).toBe(30);
      expect(page.items.map((c) => c.title)).toEqual(['c11', 'c12', 'c13', 'c14', 'c15']);
      expect(page.items.every((c) => c.messageCount === 3)).toBe(true);
    } finally {
      await database.drop();
    }
  });
});

describe('0002_branches on a database filled by the previous schema', () => {
  test('each conversation becomes one branch: parents in order, depths, the last message current; chosen titles stay chosen', async () => {
    const database = await createTestDatabase({ migrated: false });
    try {
      const { db } = database.handle;
      expect(await migrate(db, embedded.slice(0, 2))).toBe(2);
      const userId = crypto.randomUUID();
      await db.execute(
        sql`insert into users (id, username, email, password) values (${userId}, 'old', 'old@example.com', 'x')`,
      );
      const [chatty, titled, empty] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
      await db.execute(sql`insert into conversations (id, user_id, title) values
        (${chatty}, ${userId}, 'New conversation'), (${titled}, ${userId}, 'Trip'), (${empty}, ${userId}, 'New conversation')`);
      // Five messages a minute apart, inserted out of order; two with the same time (the id breaks the tie).
      const ids = Array.from({ length: 5 }, () => crypto.randomUUID()).sort();
      for (const i of [3, 0, 4, 2, 1])
        await db.execute(sql`insert into messages (id, conversation_id, role, content, status, created_at)
          values (${ids[i]}, ${chatty}, ${i % 2 ? 'assistant' : 'user'}, ${`m${i}`}, 'complete',
                  timestamptz '2026-01-01' + ${Math.min(i, 3)} * interval '1 minute')`);
      await db.execute(sql`insert into messages (id, conversation_id, role, content)
        values (${crypto.randomUUID()}, ${titled}, 'user', 'only')`);

      expect(await migrate(db)).toBe(embedded.length - 2);

      const stored = rowsOf<{ id: string; parent_id: string | null; depth: number }>(
        await db.execute(
          sql`select id, parent_id, depth from messages where conversation_id = ${chatty} order by depth`,
        ),
      );
      expect(stored.map((m) => [m.id, m.parent_id, Number(m.depth)])).toEqual(
        ids.map((id, i) => [id, i ? (ids[i - 1] as string) : null, i]),
      );
      const conversations = rowsOf<{ id: string; current_message_id: string | null; title_set: boolean }>(
        await db.execute(sql`select id, current_message_id, title_set from conversations`),
      );
      const byId = new Map(conversations.map((c) => [c.id, c]));
      expect(byId.get(chatty)).toMatchObject({ current_message_id: ids[4], title_set: false });
      expect(byId.get(titled)?.title_set).toBe(true);
      expect(byId.get(titled)?.current_message_id).toBeString();
      expect(byId.get(empty)).toMatchObject({ current_message_id: null, title_set: false });

      // The API reads them as one branch; a new message follows the last one.
      const repo = createConversationRepository(db);
      const page = await repo.branch(chatty, 100, 0);
      expect(page.count).toBe(5);
      expect(page.items.map((m) => m.content)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
      expect(page.items[2]?.siblingIds).toEqual([ids[2] as string]);
      const next = await repo.addMessage({ conversationId: chatty, role: 'user', content: 'after' });
      const after = await repo.branch(chatty, 1, 5);
      expect(after.items.map((m) => [m.id, m.parentId, m.depth])).toEqual([[next.id, ids[4] as string, 5]]);
      // Jump pointers as the app sets them one parent at a time, for every depth.
      const jumps = rowsOf<{ depth: number; jump_depth: number; jump_of: number }>(
        await db.execute(sql`select m.depth, m.jump_depth, j.depth as jump_of from messages m
          join messages j on j.id = m.jump_id where m.conversation_id = ${chatty} order by m.depth`),
      ).map((r) => [Number(r.depth), Number(r.jump_depth), Number(r.jump_of)]);
      expect(jumps).toEqual([
        [0, 0, 0],
        [1, 0, 0],
        [2, 1, 1],
        [3, 0, 0],
        [4, 3, 3],
        [5, 4, 4],
      ]);
    } finally {
      await database.drop();
    }
  });
});

describe('0003_token_generation on a database filled by the previous schema', () => {
  test('existing users keep their rows and start at generation 0, which tokens without a generation carry', async () => {
    const id = crypto.randomUUID();
    await upgrade(
      3,
      async (db) => {
        await db.execute(
          sql`insert into users (id, username, email, password) values (${id}, 'old', 'old@example.com', 'x')`,
        );
      },
      async (db) => {
        const [row] = rowsOf<{ username: string; token_generation: number }>(
          await db.execute(sql`select username, token_generation from users where id = ${id}`),
        );
        expect(row).toEqual({ username: 'old', token_generation: 0 });
      },
    );
  });
});

describe('0004_usage_quotas_search on a database filled by the previous schema', () => {
  test("each user's usage per UTC day comes from their messages; quotas start at the defaults; the search index answers", async () => {
    const userId = crypto.randomUUID();
    const conversationId = crypto.randomUUID();
    await upgrade(
      4,
      async (db) => {
        await db.execute(
          sql`insert into users (id, username, email, password) values (${userId}, 'old', 'old@example.com', 'x')`,
        );
        await db.execute(
          sql`insert into conversations (id, user_id, title) values (${conversationId}, ${userId}, 'Old Kyoto trip')`,
        );
        // Two turns on 2026-01-01 (UTC, though written in another zone) and one the day after.
        await db.execute(sql`insert into messages (id, conversation_id, role, content, prompt_tokens, completion_tokens, created_at)
          values (gen_random_uuid(), ${conversationId}, 'user', 'first question', 0, 0, '2026-01-01 10:00:00+00'),
                 (gen_random_uuid(), ${conversationId}, 'assistant', 'first answer', 10, 5, '2026-01-01 10:00:01+00'),
                 (gen_random_uuid(), ${conversationId}, 'user', 'second question', 0, 0, '2026-01-02 01:00:00+02'),
                 (gen_random_uuid(), ${conversationId}, 'assistant', 'second answer', 20, 7, '2026-01-01 23:30:00+00'),
                 (gen_random_uuid(), ${conversationId}, 'user', 'third question about 京都', 0, 0, '2026-01-02 12:00:00+00')`);
      },
      async (db) => {
        const days = rowsOf<Record<string, unknown>>(
          await db.execute(sql`select to_char(day, 'YYYY-MM-DD') as day, messages,
            prompt_tokens::int as prompt_tokens, completion_tokens::int as completion_tokens
            from usage_days where user_id = ${userId} order by day`),
        );
        expect(days).toEqual([
          { day: '2026-01-01', messages: 2, prompt_tokens: 30, completion_tokens: 12 },
          { day: '2026-01-02', messages: 1, prompt_tokens: 0, completion_tokens: 0 },
        ]);
        const [user] = rowsOf<Record<string, unknown>>(
          await db.execute(
            sql`select daily_token_quota, daily_message_quota from users where id = ${userId}`,
          ),
        );
        expect(user).toEqual({ daily_token_quota: null, daily_message_quota: null });
        const search = createConversationRepository(db).search;
        const byTitle = await search(userId, 'kyoto', 20, 0);
        expect(byTitle.items.map((item) => [item.conversation.id, item.message])).toEqual([
          [conversationId, undefined],
        ]);
        const byMessage = await search(userId, '京都 third', 20, 0);
        expect(byMessage.items[0]?.message?.content).toBe('third question about 京都');
        const indexes = rowsOf<{ indexname: string }>(
          await db.execute(
            sql`select indexname from pg_indexes where indexname like '%trgm%' order by indexname`,
          ),
        );
        expect(indexes.map((i) => i.indexname)).toEqual([
          'conversations_title_trgm_idx',
          'messages_content_folded_trgm_idx',
        ]);
      },
    );
  });
});

describe.if(Boolean(SERVICES.databaseUrl))('PostgreSQL client', () => {
  test('queries with parameters run as prepared statements: described once per connection, then one round trip', async () => {
    const database = await createTestDatabase();
    try {
      const { db } = database.handle;
      const id = crypto.randomUUID();
      // Sequential queries reuse one pooled connection, whose own statements are listed below.
      await db.select().from(users).where(eq(users.id, id));
      await db.select().from(users).where(eq(users.id, id));
      const rows = rowsOf<{ statement: string }>(
        await db.execute(sql`select statement from pg_prepared_statements`),
      );
      const matching = rows.filter((r) => r.statement.includes('from "users" where "users"."id" = $1'));
      expect(matching).toHaveLength(1);
      // Search is planned with its values every time: never a prepared statement.
      const search = createConversationRepository(db).search;
      for (let i = 0; i < 7; i++) await search(id, i % 2 ? 'ab' : 'kyoto', 20, 0);
      const statements = rowsOf<{ statement: string }>(
        await db.execute(sql`select statement from pg_prepared_statements`),
      );
      expect(statements.filter((r) => r.statement.includes('content_folded'))).toEqual([]);
    } finally {
      await database.drop();
    }
  });
});

describe("the embedded data directory's lock", () => {
  const dir = () => `/tmp/${uniqueName('locked')}`;

  /** A process that stays up for a few seconds, and a zombie: a child it never reaps. */
  const spawnZombie = async () => {
    // The child outlives the shell's exec: one that ended before it could be reaped by
    // the shell (seen once on a fresh clone: its /proc entry was gone), and so no zombie.
    const parent = Bun.spawn(['sh', '-c', 'sleep 0.5 & echo $!; exec sleep 5'], { stdout: 'pipe' });
    // The first line only: the stream stays open while `sleep 5` runs.
    const reader = parent.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    const zombie = Number(new TextDecoder().decode(value).trim());
    return { parent, zombie };
  };

  test('refuses a directory whose lock names a running process, takes over one whose process is gone', async () => {
    const data = dir();
    const lockFile = `${data}.lock`;
    const parent = Bun.spawn(['sleep', '5']);
    try {
      await Bun.write(lockFile, String(parent.pid));
      expect(() => lockDataDir(data)).toThrow(`in use by process ${parent.pid}`);
      parent.kill('SIGKILL');
      await parent.exited;
      const release = lockDataDir(data);
      expect(await Bun.file(lockFile).text()).toBe(String(process.pid));
      release();
      expect(existsSync(lockFile)).toBe(false);
      // Unreadable content names no process.
      await Bun.write(lockFile, 'not a pid');
      expect(() => lockDataDir(data)()).not.toThrow();
    } finally {
      parent.kill('SIGKILL');
      rmSync(lockFile, { force: true });
    }
  });

  test('takes over a lock whose process has ended but was not reaped yet', async () => {
    const data = dir();
    const lockFile = `${data}.lock`;
    const { parent, zombie } = await spawnZombie();
    try {
      expect(zombie).toBeGreaterThan(0);
      const state = () => Bun.file(`/proc/${zombie}/stat`).text();
      for (let i = 0; i < 150 && !(await state()).includes(') Z'); i++) await Bun.sleep(20);
      expect(await state()).toContain(') Z'); // ended, not reaped: what this test is about
      await Bun.write(lockFile, String(zombie));
      lockDataDir(data)();
      expect(existsSync(lockFile)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
      rmSync(lockFile, { force: true });
    }
  });
});

describe('embedded queries without per-query type parsers', () => {
  test("drizzle over our PGlite reads every type as drizzle's own driver does, in and out of transactions", async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const { drizzle } = await import('drizzle-orm/pglite');
    const { openPglite } = await import('../src/db/client');
    // Both start from the seed `bun install` prepared: initdb twice took ~13 s of a loaded run.
    const seed = findSeed();
    const fromSeed = seed ? { loadDataDir: seed } : {};
    const ours = await openPglite('memory://', fromSeed);
    const plain = await PGlite.create(fromSeed);
    try {
      const theirs = drizzle(plain);
      const probe = sql`select
        '2026-01-02 03:04:05.678'::timestamp as ts, '2026-01-02 03:04:05.678+02'::timestamptz as tstz,
        '1 day 02:03:04'::interval as iv, '2026-01-02'::date as d, array[1.5, 2]::numeric[] as nums,
        array['2026-01-02 03:04:05'::timestamp] as tss, array['2026-01-02 03:04:05+00'::timestamptz] as tstzs,
        array['1 hour'::interval] as ivs, array['2026-01-02'::date] as ds,
        42::int8 as big, 1.25::numeric as num, '{"a": 1}'::jsonb as j, true as b, 'x' as t`;
      const expected = rowsOf(await theirs.execute(probe));
      // PGlite's own parsers would turn the times into Dates; drizzle's leave them as text.
      expect((expected[0] as { tstz: unknown }).tstz).toEqual(expect.any(String));
      expect(rowsOf(await ours.handle.db.execute(probe))).toEqual(expected);
      expect(rowsOf(await ours.handle.db.transaction((tx) => tx.execute(probe)))).toEqual(expected);
    } finally {
      await ours.handle.close();
      await plain.close();
    }
  });
});
