import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { migrations } from './migrations.gen';

/**
 * A migrated, empty PGlite data directory (a gzipped tarball), prepared ahead so that
 * nobody waits for initdb at their first start: initdb took 3.1 s and ~450 MB in
 * WebAssembly, starting from the seed 0.9 s (bench/history.md). Named by the migrations
 * it holds, so a seed made before a schema change is never used.
 */
const SEED_PREFIX = `pglite-seed-${Bun.hash(JSON.stringify(migrations.map((m) => m.hash))).toString(36)}.`;

/** Where `bun install` (scripts/prepare-pglite.ts) leaves the seed for source runs. */
export const SEED_PATH = join(
  new URL('../..', import.meta.url).pathname,
  'node_modules',
  '.cache',
  'chatbot-api',
  `${SEED_PREFIX}tar.gz`,
);

/** The seed for these migrations: embedded in the binary, or prepared beside the source; else undefined. */
export const findSeed = (): Blob | undefined => {
  const embedded = Bun.embeddedFiles.find((file) => (file as File).name?.startsWith(SEED_PREFIX));
  if (embedded) return embedded;
  return existsSync(SEED_PATH) ? Bun.file(SEED_PATH) : undefined;
};

/** A data directory PGlite would have to initdb: in memory, or with no cluster in it yet. */
export const needsInitdb = (dataDir: string) =>
  dataDir === 'memory://' || !existsSync(join(dataDir, 'PG_VERSION'));

/**
 * Unpacks the seed into a new data directory, natively (`Bun.Archive`): PGlite's own
 * `loadDataDir` unpacks it in JavaScript, through buffers that left the process ~40 MB
 * larger for good. Unpacked beside it and renamed into place, so a start killed half-way
 * never leaves a data directory that looks whole; a directory that exists with files in
 * it (none of them PostgreSQL's) is unpacked into as it is.
 */
export const unpackSeed = async (seed: Blob, dataDir: string) => {
  const archive = new Bun.Archive(await seed.bytes());
  const empty = !existsSync(dataDir) || readdirSync(dataDir).length === 0;
  if (!empty) {
    await archive.extract(dataDir);
    return;
  }
  mkdirSync(dirname(dataDir), { recursive: true });
  const aside = join(dirname(dataDir), `.${SEED_PREFIX}${process.pid}`);
  try {
    await archive.extract(aside);
    rmSync(dataDir, { recursive: true, force: true });
    renameSync(aside, dataDir);
  } finally {
    rmSync(aside, { recursive: true, force: true });
  }
};
