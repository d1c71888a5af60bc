/**
 * The server runs without JavaScriptCore's top-tier optimizing compiler (FTL); the
 * interpreter, the baseline JIT and the DFG compiler stay. A chat server is glue —
 * parsing, framing, awaiting I/O — with no hot numeric loop for the FTL's heavier
 * optimizations to pay back, and under load it kept compiling: 11 – 17% of the
 * server's CPU after a dozen turns of the throughput benchmark, against 2 – 3%
 * without it, and CPU per 1,000 tokens fell with it (bench/history.md).
 *
 * JavaScriptCore reads its options once, when the runtime starts, so the process
 * replaces itself (execve: same process id, same open files and signals, no second
 * process) with the same command and `BUN_JSC_useFTLJIT=0` (src/config.ts, the one
 * reader of the environment, decides), before the rest of the server is loaded.
 * `BUN_JSC_useFTLJIT` already set is left as it is: `=1` turns the FTL back on.
 * Where execve is missing (Windows) the server runs as it is.
 */
import { environmentWithoutFtl } from './config';

// Not for `healthcheck` (the container probe): it only asks the server and exits.
const serving = process.argv[2] !== 'healthcheck';
const environment = serving ? environmentWithoutFtl() : undefined;

if (environment && process.platform !== 'win32' && process.execve) {
  // A compiled executable's second argument is its own embedded entry point, which
  // it adds again itself; a script's is the script, which `bun` needs.
  const standalone = process.argv[1]?.startsWith('/$bunfs/') ?? false;
  const args = standalone
    ? [process.argv0, ...process.argv.slice(2)]
    : [process.argv0, ...process.execArgv, ...process.argv.slice(1)];
  try {
    process.execve(process.execPath, args, environment);
  } catch {
    // Not replaced: the server runs with the FTL, as before.
  }
}
