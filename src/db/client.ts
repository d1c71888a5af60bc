import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import type { DatabaseConfig } from '../config';
import { pgliteAssets } from './pglite-assets';
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
  'pgliteWasmModule' | 'initdbWasmModule' | 'fsBundle' | 'loadDataDir'
>;

const openPostgres = (url: string): DatabaseHandle => {
  const client = postgres(url, {
    max: 20,
    // Fail fast while the server is down and reconnect on the next query: no back-off,
    // so service resumes as soon as the database answers again (SPEC §10).
    connect_timeout: 2,
    idle_timeout: 60,
    onnotice: () => {},
  });
  // drizzle runs every unnamed query with `prepare: false`, and postgres.js then sends
  // a query with parameters in two round trips (describe, then bind and execute).
  // Prepared, a statement is described once per connection and every later run is
  // one round trip. Our statements have fixed shapes, so the per-connection cache
  // stays small.
  const unsafe = client.unsafe.bind(client);
  client.unsafe = ((query, parameters, options) =>
    unsafe(query, parameters, { ...options, prepare: true })) as typeof client.unsafe;
  const db = drizzlePostgres(client, { schema });
  return {
    db,
    kind: 'postgres',
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: () => client.end({ timeout: 2 }),
  };
};

export const openPglite = async (dataDir: string, options: Pick<PgliteAssets, 'loadDataDir'> = {}) => {
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const client = await PGlite.create(dataDir === 'memory://' ? undefined : dataDir, {
    ...(await pgliteAssets()),
    ...options,
  });
  const db = drizzlePglite(client, { schema });
  const handle: DatabaseHandle = {
    db,
    kind: 'embedded',
    ping: async () => {
      await client.query('select 1');
    },
    close: () => client.close(),
  };
  return { handle, client };
};

export const openDatabase = async (config: DatabaseConfig): Promise<DatabaseHandle> =>
  config.kind === 'postgres' ? openPostgres(config.url) : (await openPglite(config.dataDir)).handle;
