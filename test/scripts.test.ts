import { describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { currentBundleDir } from '../src/ai/tokenizer-bundle';
import { openDatabase, openPglite, rowsOf } from '../src/db/client';
import { lockDataDir } from '../src/db/data-dir-lock';
import { migrations } from '../src/db/migrations.gen';
import { findSeed, SEED_PATH } from '../src/db/pglite-seed';
import { users } from '../src/db/schema';
import { createTestDatabase, uniqueName } from './support/backends';
import { STRONG_PASSWORD } from './support/client';

const root = new URL('..', import.meta.url).pathname;

const run = (script: string, args: string[], env: Record<string, string>) =>
  Bun.spawnSync(['bun', script, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdin: 'ignore',
  });

describe('bun run createsuperuser', () => {
  test('creates an active staff superuser from flags, and refuses a duplicate or weak password', async () => {
    const database = await createTestDatabase();
    const dir = `/tmp/${uniqueName('pglite')}`;
    // The script runs in its own process: it needs a database URL it can open too.
    const env = database.url ? { DATABASE_URL: database.url } : { DATABASE_URL: `file://${dir}` };
    try {
      const username = uniqueName('admin');
      const ok = run(
        'scripts/createsuperuser.ts',
        ['--username', username, '--email', `${username}@example.com`, '--password', STRONG_PASSWORD],
        env,
      );
      expect(ok.stdout.toString()).toContain('created');
      expect(ok.exitCode).toBe(0);

      const again = run(
        'scripts/createsuperuser.ts',
        ['--username', username, '--email', 'other@example.com', '--password', STRONG_PASSWORD],
        env,
      );
      expect(again.exitCode).toBe(1);
      expect(again.stderr.toString()).toContain('username already exists');

      // What the input shows by itself is refused before any database is opened: here none answers.
      const nowhere = { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' };
      const weak = run(
        'scripts/createsuperuser.ts',
        ['--username', uniqueName('b'), '--email', 'b@example.com', '--password', 'weak'],
        nowhere,
      );
      expect(weak.exitCode).toBe(1);
      expect(weak.stderr.toString()).toContain('at least 12');

      // The email rule registration uses (the script's own took two dots in a row).
      const email = run(
        'scripts/createsuperuser.ts',
        ['--username', uniqueName('c'), '--email', 'c..c@example.com', '--password', STRONG_PASSWORD],
        nowhere,
      );
      expect(email.exitCode).toBe(1);
      expect(email.stderr.toString()).toContain('Enter a valid email address.');

      const target = database.url ? database.handle : (await openPglite(dir)).handle;
      const [row] = await target.db.select().from(users).where(eq(users.username, username));
      if (!database.url) await target.close();
      expect(row).toMatchObject({ isStaff: true, isSuperuser: true, isActive: true });
      expect(row?.password.startsWith('$argon2id$')).toBe(true);
    } finally {
      await database.drop();
      await Bun.$`rm -rf ${dir}`.quiet();
    }
  }, 60_000);

  test('--help prints its usage; an unknown flag or a stray argument is refused with it, exit 2, no stack trace', () => {
    const help = run('scripts/createsuperuser.ts', ['--help'], {});
    expect(help.exitCode).toBe(0);
    expect(help.stdout.toString()).toStartWith('Usage: bun run createsuperuser');
    for (const args of [['--nope'], ['extra'], ['--username']]) {
      const refused = run('scripts/createsuperuser.ts', args, {});
      expect(refused.exitCode).toBe(2);
      const stderr = refused.stderr.toString();
      expect(stderr).toContain('Usage: bun run createsuperuser');
      expect(stderr).not.toContain(' at ');
    }
  });
});

describe('bun run db:migrate', () => {
  test('applies migrations to an empty database, then reports it up to date', async () => {
    const dir = `/tmp/${uniqueName('pglite')}`;
    try {
      // An empty cluster (a new one starts from the migrated seed: see the next test).
      const seed = findSeed();
      const { client } = await openPglite(dir, seed ? { loadDataDir: seed } : {});
      await client.exec(
        'drop schema if exists drizzle cascade; drop schema public cascade; create schema public',
      );
      await client.close();
      const first = run('scripts/migrate.ts', [], { DATABASE_URL: `file://${dir}` });
      expect(first.stdout.toString()).toContain(`Applied ${migrations.length} migration`);
      const second = run('scripts/migrate.ts', [], { DATABASE_URL: `file://${dir}` });
      expect(second.stdout.toString()).toContain('up to date');
    } finally {
      Bun.spawnSync(['rm', '-rf', dir]);
    }
  }, 60_000);

  test('refuses an embedded database another process has open, saying which', () => {
    const dir = `/tmp/${uniqueName('pglite')}`;
    // This test's process holds the directory, as a running server would.
    const release = lockDataDir(dir);
    try {
      const refused = run('scripts/migrate.ts', [], { DATABASE_URL: `file://${dir}` });
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr.toString()).toContain(
        `Cannot migrate: the embedded database in ${dir} is in use by process ${process.pid}`,
      );
      expect(existsSync(`${dir}/PG_VERSION`)).toBe(false);
    } finally {
      release();
      Bun.spawnSync(['rm', '-rf', dir]);
    }
  });

  test('a new embedded database starts from the seed `bun install` prepared: migrated, empty, no initdb', async () => {
    expect(findSeed()).toBeDefined();
    const dir = `/tmp/${uniqueName('pglite')}`;
    try {
      const migrated = run('scripts/migrate.ts', [], { DATABASE_URL: `file://${dir}` });
      expect(migrated.stdout.toString()).toContain('up to date');
      const { client } = await openPglite(dir);
      const tables = await client.query<{ n: number }>(
        "select count(*)::int as n from information_schema.tables where table_schema = 'public'",
      );
      expect(tables.rows[0]?.n).toBeGreaterThanOrEqual(4);
      expect((await client.query<{ n: number }>('select count(*)::int as n from users')).rows[0]?.n).toBe(0);
      await client.close();
    } finally {
      Bun.spawnSync(['rm', '-rf', dir]);
    }
  }, 60_000);

  test('the server unpacks the seed into a new, an empty or a foreign-filled data directory, leaving nothing beside it', async () => {
    const parent = `/tmp/${uniqueName('pglite-parent')}`;
    const fresh = `${parent}/nested/fresh`;
    const empty = `${parent}/empty`;
    const foreign = `${parent}/foreign`;
    mkdirSync(empty, { recursive: true });
    mkdirSync(foreign, { recursive: true });
    await Bun.write(`${foreign}/README`, 'mine');
    try {
      for (const dataDir of [fresh, empty, foreign]) {
        const handle = await openDatabase({ kind: 'pglite', dataDir });
        const applied = rowsOf<{ n: number }>(
          await handle.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`),
        );
        expect(applied[0]?.n).toBe(migrations.length);
        // 16 MB of shared buffers, not PGlite's 128 MB (SPEC §15's 180 MB embedded).
        const buffers = rowsOf<{ shared_buffers: string }>(await handle.db.execute(sql`show shared_buffers`));
        expect(buffers[0]?.shared_buffers).toBe('16MB');
        await handle.close();
        expect(await Bun.file(`${dataDir}/PG_VERSION`).exists()).toBe(true);
      }
      expect(await Bun.file(`${foreign}/README`).text()).toBe('mine');
      expect(readdirSync(parent).sort()).toEqual(['empty', 'foreign', 'nested']);
      expect(readdirSync(`${parent}/nested`)).toEqual(['fresh']);
    } finally {
      Bun.spawnSync(['rm', '-rf', parent]);
    }
  }, 60_000);

  test('the seed is named by the migrations it holds; prepare-pglite (bun install runs it) leaves it in place', () => {
    expect(SEED_PATH).toContain(`node_modules/.cache/chatbot-api/pglite-seed-`);
    const prepared = run('scripts/prepare-pglite.ts', [], {});
    expect(prepared.exitCode).toBe(0);
    expect(Bun.file(SEED_PATH).size).toBeGreaterThan(1_000_000);
  });
});

describe('bun install prepares the tokenizer', () => {
  test('prepare-tokenizer leaves the worker bundled and compiled to bytecode, named by its inputs', () => {
    const prepared = run('scripts/prepare-tokenizer.ts', [], {});
    expect(prepared.exitCode).toBe(0);
    const dir = currentBundleDir() as string;
    expect(Bun.file(join(dir, 'worker.js')).size).toBeGreaterThan(1_000_000);
    expect(Bun.file(join(dir, 'worker.js.jsc')).size).toBeGreaterThan(1_000_000);
    expect(readdirSync(dirname(dir)).filter((name) => name.startsWith(`${basename(dir)}.`))).toEqual([]);
  });
});
