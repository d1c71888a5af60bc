/**
 * The runtime settings `bun run test` gives its workers (scripts/test.ts) and the tests
 * pass on to the processes they start (test/support/process.ts). They change how much
 * CPU a short-lived process burns, never what it does:
 * - `BUN_JSC_useOMGJIT=0`: JavaScriptCore does not recompile PGlite's hottest
 *   WebAssembly functions with its optimizing tier, which a short-lived process never
 *   earns back;
 * - `MIMALLOC_PURGE_DELAY=-1`: the allocator keeps freed memory rather than handing it
 *   back to the kernel only to fault it in again a moment later. The suite's PGlite
 *   clones and servers churn through gigabytes, and on a virtual machine each fault is
 *   dear (about a quarter less CPU, mostly system time: bench/history.md, "Page faults").
 */
export const SUITE_RUNTIME = { BUN_JSC_useOMGJIT: '0', MIMALLOC_PURGE_DELAY: '-1' };
