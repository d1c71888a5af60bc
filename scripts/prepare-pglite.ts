/**
 * `bun install` runs this (postinstall), and `bun run build` before compiling: a
 * migrated, empty PGlite data directory as a tarball (src/db/pglite-seed.ts), so the
 * first `bun run dev` starts from it instead of running initdb. Never fails the
 * install: without a seed the server runs initdb as before.
 */
import { mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { openPglite } from '../src/db/client';
import { migrate } from '../src/db/migrate';
import { findSeed, SEED_PATH } from '../src/db/pglite-seed';

try {
  if (findSeed()) process.exit(0);
  const started = performance.now();
  const { handle, client } = await openPglite('memory://');
  await migrate(handle.db);
  const seed = await (client as PGlite).dumpDataDir('gzip');
  await handle.close();
  mkdirSync(dirname(SEED_PATH), { recursive: true });
  // Written aside and renamed: a concurrent start never reads half of it.
  await Bun.write(`${SEED_PATH}.${process.pid}`, seed);
  renameSync(`${SEED_PATH}.${process.pid}`, SEED_PATH);
  console.log(`prepared the embedded database (${Math.round(performance.now() - started)} ms)`);
} catch (error) {
  console.warn(`could not prepare the embedded database ahead (first start runs initdb): ${error}`);
}
