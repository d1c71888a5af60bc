import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Another live process has the embedded database's data directory open. */
export class DataDirInUse extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
    readonly lockFile: string,
  ) {
    super(
      `the embedded database in ${dataDir} is in use by process ${pid}. Stop that server first, or set ` +
        `DATABASE_URL (PostgreSQL) and REDIS_URL to run several instances. If no such process runs, delete ${lockFile}.`,
    );
  }
}

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code;

/** A process that has ended but was not reaped yet (Linux): signal 0 still reaches it. */
const zombie = (pid: number) => {
  try {
    // "pid (comm) state …": the command name may itself hold ") ".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
};

/** Whether `pid` is another process that is still running. */
const running = (pid: number) => {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
  return !zombie(pid);
};

/**
 * PGlite is PostgreSQL inside this process: two processes on one data directory each
 * keep their own copy in memory and write over each other's files. Seen: a second
 * `bun run dev` started beside the first, both listened on the port (SO_REUSEPORT), and
 * a user registered through one was unknown to the other. A lock file beside the
 * directory names the process that has it; a second process refuses to start, and a
 * lock left by a process that is gone (killed) is taken over. A process id of our own
 * counts as gone: a container restarted with the same volume starts as pid 1 again.
 * Returns the release, which removes the file if it is still ours.
 */
export const lockDataDir = (dataDir: string): (() => void) => {
  const file = `${resolve(dataDir)}.lock`;
  mkdirSync(dirname(file), { recursive: true });
  const ours = String(process.pid);
  const release = () => {
    try {
      if (readFileSync(file, 'utf8') === ours) rmSync(file, { force: true });
    } catch {
      // Already gone.
    }
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, ours, { flag: 'wx' });
      return release;
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
    }
    let holder: number;
    try {
      holder = Number(readFileSync(file, 'utf8').trim());
    } catch (error) {
      if (errorCode(error) === 'ENOENT') continue; // released meanwhile
      throw error;
    }
    if (running(holder)) throw new DataDirInUse(dataDir, holder, file);
    rmSync(file, { force: true });
  }
  throw new Error(`could not take the lock ${file}: it keeps coming back`);
};
