import { mkdirSync } from 'node:fs';
import { PGlite, type Transaction, types } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import type { DatabaseConfig } from '../config';
import { createBreaker } from './breaker';
import { lockDataDir } from './data-dir-lock';
import { pgliteAssets } from './pglite-assets';
import { findSeed, needsInitdb, unpackSeed } from './pglite-seed';
import * as schema from './schema';

/** The one database type the rest of the code sees, whichever client runs below it. */
export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DatabaseHandle {
  db: Database;
  /** `postgres` for a server, `embedded` for PGlite (reported by the health check). */
  kind: 'postgres' | 'embedded';
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** `db.execute` returns an array on postgres.js and `{ rows }` on PGlite. */
export const rowsOf = <T>(result: unknown): T[] =>
  Array.isArray(result) ? (result as T[]) : ((result as { rows: T[] }).rows ?? []);

/** PGlite's embedded assets, and a data directory to start from (test clones). */
export type PgliteAssets = Pick<
  NonNullable<Parameters<typeof PGlite.create>[1]>,
  'pgliteWasmModule' | 'initdbWasmModule' | 'fsBundle' | 'loadDataDir' | 'extensions'
>;

const PLANNED_PER_CALL_MARK = '/* planned per call */';
/**
 * Put first in a query whose best plan depends on its parameters' values (search
 * patterns: a two-letter one can use no trigram, a rare word is one index lookup).
 * Prepared, PostgreSQL would soon settle on one generic plan for every value, and
 * one such plan took two minutes; marked, the query is planned with its values each
 * time. (PGlite plans every query with its values anyway.)
 */
export const PLANNED_PER_CALL = sql.raw(`${PLANNED_PER_CALL_MARK} `);

// Every request answers within 2 s however long the database is away (SPEC §10):
// a query gets 1.5 s, and a database known to be down is tried every 250 ms.
const BREAKER = { deadlineMs: 1500, probeEveryMs: 250 };

const openPostgres = (url: string): DatabaseHandle => {
  const client = postgres(url, {
    max: 20,
    connect_timeout: 1,
    // postgres.js waits up to 20 s before reconnecting after repeated failures; the
    // breaker already keeps queries away from a database that is down, so the pool
    // reconnects at once when it is back.
    backoff: () => 0,
    idle_timeout: 60,
    onnotice: () => {},
  });
  // The breaker's probe has a connection of its own, so it never waits behind the pool.
  let probeClient: postgres.Sql | undefined;
  const breaker = createBreaker(() => {
    probeClient ??= postgres(url, {
      max: 1,
      connect_timeout: 1,
      backoff: () => 0,
      idle_timeout: 5,
      onnotice: () => {},
    });
    return probeClient`select 1`;
  }, BREAKER);
  // drizzle runs every unnamed query with `prepare: false`, and postgres.js then sends
  // a query with parameters in two round trips (describe, then bind and execute).
  // Prepared, a statement is described once per connection and every later run is
  // one round trip. Our statements have fixed shapes, so the per-connection cache
  // stays small. drizzle gets a view of the client whose `unsafe` does that under
  // the breaker; postgres.js itself keeps its own `unsafe` (its `begin` uses it).
  // drizzle only awaits what `unsafe` returns and asks for `values()`: the guarded
  // query offers exactly that.
  const unsafe = client.unsafe.bind(client);
  const guarded = Object.create(client) as typeof client;
  guarded.unsafe = ((...[query, parameters, options]: Parameters<typeof unsafe>) =>
    breaker.guard(() =>
      unsafe(query, parameters, { ...options, prepare: !query.startsWith(PLANNED_PER_CALL_MARK) }),
    )) as unknown as typeof unsafe;
  const db = drizzlePostgres(guarded, { schema });
  return {
    db,
    kind: 'postgres',
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      breaker.stop();
      await Promise.all([client.end({ timeout: 2 }), probeClient?.end({ timeout: 1 })]);
    },
  };
};

/**
 * PGlite starts PostgreSQL with 128 MB of shared buffers, nearly all of which it
 * touches at start: 120 MB of the embedded server's idle memory. One user's chat
 * history is served well by 16 MB (the files stay in the operating system's cache),
 * which keeps the embedded server within SPEC §15's 180 MB (bench/history.md).
 */
const PGLITE_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];

/**
 * The type parsers drizzle's PGlite driver passes with every query: date and time
 * types (and numeric and time arrays) left as PostgreSQL's text, which drizzle maps
 * itself. PGlite merges a query's parsers into a fresh copy of its ~320 parsers on
 * every query, ~100 µs each (bench/history.md), so the instance takes these as its own
 * and `withoutQueryParsers` drops them from each query.
 */
const text = (value: string) => value;
const DRIZZLE_PARSERS = Object.fromEntries(
  [types.TIMESTAMP, types.TIMESTAMPTZ, types.INTERVAL, types.DATE, 1231, 1115, 1185, 1187, 1182].map(
    (oid) => [oid, text],
  ),
);

type Queries = Pick<PGlite, 'query' | 'transaction'>;

/** `client` as drizzle uses it (`query`, `transaction`), its queries without their own parsers. */
const withoutQueryParsers = (client: Queries): Queries => {
  const plain = <Q extends Pick<Transaction, 'query'>>(queries: Q): Pick<Transaction, 'query'> => ({
    query: (query, params, options) =>
      queries.query(query, params, options?.parsers ? { ...options, parsers: undefined } : options),
  });
  return {
    ...plain(client),
    transaction: (callback) => client.transaction((tx) => callback(plain(tx) as Transaction)),
  };
};

export const openPglite = async (dataDir: string, options: Pick<PgliteAssets, 'loadDataDir'> = {}) => {
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const client = await PGlite.create(dataDir === 'memory://' ? undefined : dataDir, {
    ...(await pgliteAssets({ withInitdb: needsInitdb(dataDir) && !options.loadDataDir })),
    ...options,
    startParams: PGLITE_START_PARAMS,
  });
  // After start-up, which sets the array types' parsers from the database's catalogue.
  Object.assign(client.parsers, DRIZZLE_PARSERS);
  return { handle: pgliteHandle(client), client };
};

/** The handle over a PGlite instance; `close` closes it unless told otherwise (test clones are reused). */
export const pgliteHandle = (client: PGlite, close = () => client.close()): DatabaseHandle => ({
  db: drizzlePglite(withoutQueryParsers(client) as PGlite, { schema }),
  kind: 'embedded',
  ping: async () => {
    await client.query('select 1');
  },
  close,
});

export const openDatabase = async (config: DatabaseConfig): Promise<DatabaseHandle> => {
  if (config.kind === 'postgres') return openPostgres(config.url);
  const { dataDir } = config;
  // A new database starts from the prepared seed (pglite-seed.ts) rather than initdb.
  if (dataDir === 'memory://') {
    const seed = findSeed();
    return (await openPglite(dataDir, seed ? { loadDataDir: seed } : {})).handle;
  }
  // One process per data directory (data-dir-lock.ts), taken before the directory is read.
  const unlock = lockDataDir(dataDir);
  try {
    const seed = needsInitdb(dataDir) ? findSeed() : undefined;
    if (seed) await unpackSeed(seed, dataDir);
    const { handle } = await openPglite(dataDir);
    return {
      ...handle,
      close: async () => {
        try {
          await handle.close();
        } finally {
          unlock();
        }
      },
    };
  } catch (error) {
    unlock();
    throw error;
  }
};
