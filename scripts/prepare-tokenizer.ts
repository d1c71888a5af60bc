/**
 * `bun install` runs this (postinstall): the tokenizer's worker bundled and compiled to
 * bytecode (src/ai/tokenizer-bundle.ts), so a server run from source loads it in ~130 ms
 * rather than ~330. Never fails the install: without the bundle the worker runs from
 * its source as before.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { currentBundleDir, WORKER_SOURCE } from '../src/ai/tokenizer-bundle';

const dir = currentBundleDir();
try {
  if (!dir) throw new Error('the worker or the tokenizer package cannot be read');
  if (existsSync(join(dir, 'worker.js.jsc'))) process.exit(0);
  const started = performance.now();
  // Built aside and renamed: a server starting meanwhile never finds half of it.
  const aside = `${dir}.${process.pid}`;
  mkdirSync(dirname(dir), { recursive: true });
  const result = await Bun.build({
    entrypoints: [WORKER_SOURCE],
    outdir: aside,
    naming: 'worker.js',
    target: 'bun',
    // Bun compiles a bundle to bytecode only as CommonJS (ESM needs a compiled binary).
    format: 'cjs',
    bytecode: true,
  });
  if (!result.success) throw new AggregateError(result.logs, 'the bundle did not build');
  rmSync(dir, { recursive: true, force: true });
  renameSync(aside, dir);
  // Bundles of an earlier worker, tokenizer or Bun are never used again.
  for (const name of readdirSync(dirname(dir)))
    if (name.startsWith('tokenizer-') && !name.includes('.') && name !== basename(dir))
      rmSync(join(dirname(dir), name), { recursive: true, force: true });
  console.log(`prepared the tokenizer (${Math.round(performance.now() - started)} ms)`);
} catch (error) {
  if (dir) rmSync(`${dir}.${process.pid}`, { recursive: true, force: true });
  console.warn(`could not prepare the tokenizer ahead (it loads from source): ${error}`);
}
