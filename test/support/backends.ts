import type { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { type DatabaseHandle, openDatabase, openPglite, pgliteHandle } from '../../src/db/client';
import { migrate } from '../../src/db/migrate';
import { findSeed } from '../../src/db/pglite-seed';
import type { Store } from '../../src/store';
import { MemoryStore } from '../../src/store/memory';
import { RedisStore } from '../../src/store/redis';

/**
 * Which backends the suite runs on: the real services when DATABASE_URL / REDIS_URL
 * are set (CI's first run), the embedded defaults otherwise (its second run).
 */
export const SERVICES = {
  databaseUrl: process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : undefined,
  redisUrl: process.env.REDIS_URL || undefined,
};

/**
 * Argon2id at its cheapest for the servers the tests start: the suite hashes and checks
 * hundreds of passwords, ~120 ms each at the production defaults (a test of its own
 * checks those defaults: test/modules/auth.test.ts).
 */
export const FAST_PASSWORD_HASHING = { PASSWORD_HASH_MEMORY_KIB: '1024', PASSWORD_HASH_TIME_COST: '1' };

export const uniqueName = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

export interface TestDatabase {
  handle: DatabaseHandle;
  /** A URL another process can use (PostgreSQL only). */
  url?: string;
  drop(): Promise<void>;
}

let pgliteTemplate: Promise<Blob> | undefined;

/**
 * initdb is slow on PGlite: each test file's database is a clone of the seed `bun install`
 * prepared (src/db/pglite-seed.ts), or else of one migrated here once. The seed is
 * unzipped once here: a clone from the plain tarball takes ~350 ms of CPU, from the
 * gzipped one ~450 ms. A finished test's clone is emptied and reused (`spares`): of
 * the suite's 61 migrated test databases, 14 are clones.
 */
const templateDump = () => {
  pgliteTemplate ??= (async () => {
    const seed = findSeed();
    if (seed) return new Blob([Bun.gunzipSync(new Uint8Array(await seed.arrayBuffer()))]);
    const { handle, client } = await openPglite('memory://');
    await migrate(handle.db);
    const dump = await (client as PGlite).dumpDataDir('none');
    await handle.close();
    return dump;
  })();
  return pgliteTemplate;
};

const clone = async () =>
  (await openPglite('memory://', { loadDataDir: await templateDump() })).client as PGlite;

/**
 * Migrated PGlite clones a finished test gave back, emptied, for the next test of this
 * worker process: a clone costs ~350 ms of CPU, emptying its tables a few. A clone
 * that cannot be emptied is closed instead.
 */
const spares: PGlite[] = [];

const empty = async (client: PGlite) => {
  const { rows } = await client.query<{ list: string | null }>(
    `select string_agg(format('%I.%I', schemaname, tablename), ', ') as list
     from pg_tables where schemaname = 'public'`,
  );
  if (rows[0]?.list) await client.exec(`truncate ${rows[0].list} restart identity cascade`);
};

/**
 * A migrated clone for one test. Its handle refuses every call once the test has
 * given it back, so nothing a finished server still runs can reach the next test's data.
 */
const lease = (client: PGlite): TestDatabase => {
  let given = false;
  const guarded = new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (given) throw new Error('this test database was given back');
        return value.apply(target, args);
      };
    },
  });
  const giveBack = async () => {
    if (given) return;
    given = true;
    try {
      await empty(client);
      spares.push(client);
    } catch {
      await client.close().catch(() => {});
    }
  };
  return { handle: pgliteHandle(guarded, giveBack), drop: giveBack };
};

const withDatabase = (url: string, name: string) => {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
};

/**
 * A fresh, migrated database of its own: a new PostgreSQL database or a PGlite clone.
 * `migrated: false` leaves it empty (migration tests apply their own).
 */
export const createTestDatabase = async ({ migrated = true } = {}): Promise<TestDatabase> => {
  if (!SERVICES.databaseUrl) {
    if (migrated) return lease(spares.pop() ?? (await clone()));
    const { handle, client } = await openPglite('memory://', { loadDataDir: await templateDump() });
    // A clone emptied again: a second initdb would take seconds.
    await client.exec('drop schema public cascade; create schema public; drop schema drizzle cascade');
    return { handle, drop: () => handle.close() };
  }
  const name = uniqueName('chatbot_test');
  const admin = postgres(SERVICES.databaseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const url = withDatabase(SERVICES.databaseUrl, name);
  const handle = await openDatabase({ kind: 'postgres', url });
  if (migrated) await migrate(handle.db);
  return {
    handle,
    url,
    drop: async () => {
      await handle.close();
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
};

export interface TestStore {
  store: Store;
  prefix?: string;
  drop(): Promise<void>;
}

/** A store of its own: Redis under a unique key prefix, or an in-process map. */
export const createTestStore = async (): Promise<TestStore> => {
  if (!SERVICES.redisUrl) {
    const store = new MemoryStore();
    return { store, drop: () => store.close() };
  }
  const prefix = `${uniqueName('test')}:`;
  const store = new RedisStore(SERVICES.redisUrl, prefix);
  await store.connect();
  return {
    store,
    prefix,
    drop: async () => {
      await deleteKeys(prefix);
      await store.close();
    },
  };
};

const deleteKeys = async (prefix: string) => {
  if (!SERVICES.redisUrl) return;
  const { Redis } = await import('ioredis');
  const redis = new Redis(SERVICES.redisUrl);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
};
