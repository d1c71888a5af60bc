import { renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import initdbWasm from '@electric-sql/pglite/initdb.wasm' with { type: 'file' };
import pgliteData from '@electric-sql/pglite/pglite.data' with { type: 'file' };
import pgliteWasm from '@electric-sql/pglite/pglite.wasm' with { type: 'file' };
// Not among the package's exports; a relative path lets the binary embed it too.
import pgTrgmBundle from '../../node_modules/@electric-sql/pglite/dist/pg_trgm.tar.gz' with { type: 'file' };
import type { PgliteAssets } from './client';

let assets: Promise<PgliteAssets> | undefined;
let initdb: Promise<WebAssembly.Module> | undefined;

/**
 * A path PGlite can stream the pg_trgm bundle from. In the compiled binary the file
 * lives in Bun's embedded file system, which PGlite's stream reader cannot open: a
 * copy (16 KB) goes to the temporary directory, named by its content.
 */
const pgTrgmPath = async () => {
  if (!pgTrgmBundle.startsWith('/$bunfs/')) return pgTrgmBundle;
  const bytes = await Bun.file(pgTrgmBundle).bytes();
  const path = join(tmpdir(), `chatbot-api-pg_trgm-${Bun.hash(bytes).toString(16)}.tar.gz`);
  const existing = Bun.file(path);
  if (!(await existing.exists()) || existing.size !== bytes.byteLength) {
    // Written aside and renamed, so another process starting at once never reads half of it.
    const aside = `${path}.${process.pid}`;
    await Bun.write(aside, bytes);
    renameSync(aside, path);
  }
  return path;
};

/**
 * PGlite's WebAssembly and file-system bundle, imported as files so that
 * `bun build --compile` embeds them (PGlite cannot find them in a compiled binary
 * by itself). Compiled once per process and shared by every PGlite instance. The
 * initdb module is compiled only for a data directory that needs it (no seed): a
 * compiled module is memory held for the life of the process.
 */
export const pgliteAssets = async ({ withInitdb }: { withInitdb: boolean }): Promise<PgliteAssets> => {
  assets ??= (async () => ({
    pgliteWasmModule: await WebAssembly.compile(await Bun.file(pgliteWasm).arrayBuffer()),
    // Read when an instance starts, not held by the process (a file is a lazy Blob).
    fsBundle: Bun.file(pgliteData),
    // pg_trgm, for the search index (SPEC §13).
    extensions: {
      pg_trgm: { name: 'pg_trgm', setup: async () => ({ bundlePath: pathToFileURL(await pgTrgmPath()) }) },
    },
  }))();
  if (!withInitdb) return assets;
  initdb ??= (async () => WebAssembly.compile(await Bun.file(initdbWasm).arrayBuffer()))();
  return { ...(await assets), initdbWasmModule: await initdb };
};
