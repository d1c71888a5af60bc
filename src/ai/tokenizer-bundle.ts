import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The tokenizer's worker bundled and compiled to bytecode ahead, for runs from source
 * (`bun install` runs scripts/prepare-tokenizer.ts): its first answer took ~330 ms from
 * source and ~130 ms from the bundle, most of it parsing the 2.4 MB module of ranks
 * (the binary compiles the worker to bytecode itself). That first load is what the
 * first stop after start waits for (SPEC §11: one second) and the first long
 * conversation's trim. Named by what it is built from (the worker's source, the
 * tokenizer's package and Bun's version), so a stale bundle is never used; a bytecode
 * file Bun cannot use is ignored by Bun, which then parses the bundle.
 */
const ROOT = new URL('../..', import.meta.url).pathname;
export const WORKER_SOURCE = join(ROOT, 'src', 'ai', 'tokenizer-worker.ts');
const TOKENIZER_PACKAGE = join(ROOT, 'node_modules', 'gpt-tokenizer', 'package.json');

/** The bundle's folder for these inputs (the worker is `worker.js` in it). */
export const bundleDir = (workerSource: string, tokenizerPackage: string, bunVersion: string) =>
  join(
    ROOT,
    'node_modules',
    '.cache',
    'chatbot-api',
    `tokenizer-${Bun.hash(`${workerSource}\0${tokenizerPackage}\0${bunVersion}`).toString(36)}`,
  );

/** The bundle's folder for this checkout and this Bun; undefined when its inputs cannot be read. */
export const currentBundleDir = () => {
  try {
    return bundleDir(
      readFileSync(WORKER_SOURCE, 'utf8'),
      readFileSync(TOKENIZER_PACKAGE, 'utf8'),
      Bun.version,
    );
  } catch {
    return undefined;
  }
};

/** The prepared worker in `dir` (by default, for this source, package and Bun) if `bun install` made it; else undefined. */
export const preparedWorker = (dir = currentBundleDir()) => {
  const worker = dir && join(dir, 'worker.js');
  return worker && existsSync(`${worker}.jsc`) ? worker : undefined;
};
