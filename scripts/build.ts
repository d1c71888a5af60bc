/**
 * `bun run build`: one self-contained executable at dist/chatbot-api. Migrations, the
 * migrated empty database (pglite-seed.ts),
 * PGlite's wasm/data files and Swagger UI's assets are embedded by their imports.
 * Whitespace and syntax minification only: identifier minification (`--minify`)
 * breaks Elysia, which compiles handlers from their source text.
 */
import { SEED_PATH } from '../src/db/pglite-seed';

const outfile = process.argv[2] ?? 'dist/chatbot-api';

// The embedded database's seed (src/db/pglite-seed.ts), so a first start skips initdb.
const prepared = Bun.spawnSync(['bun', 'scripts/prepare-pglite.ts'], {
  stdout: 'inherit',
  stderr: 'inherit',
});
if (prepared.exitCode !== 0 || !(await Bun.file(SEED_PATH).exists())) {
  console.error('could not prepare the embedded database seed');
  process.exit(1);
}

const result = await Bun.build({
  // The tokenizer's worker is an entrypoint of its own, embedded beside the server; the
  // seed is a file the binary carries (Bun.embeddedFiles).
  entrypoints: ['./src/index.ts', './src/ai/tokenizer-worker.ts', SEED_PATH],
  // Embedded under the entry points' common folder, the repository's root.
  define: {
    EMBEDDED_TOKENIZER_WORKER: JSON.stringify('/$bunfs/root/src/ai/tokenizer-worker.ts'),
  },
  compile: { outfile },
  // Compiled to bytecode ahead: the binary on PostgreSQL + Redis answered health after
  // 441 – 466 ms without, 268 – 283 ms with (the parse and first compile of every module
  // at start; bench/history.md). Costs ~16 MB of file and ~4 MB of RSS.
  bytecode: true,
  format: 'esm',
  minify: { whitespace: true, syntax: true, identifiers: false },
  sourcemap: 'none',
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
