import { databaseProblem } from '../lib/failures';
import { DataDirInUse } from './data-dir-lock';

/**
 * For a command's or start-up's `.catch`: a database it cannot use (an embedded one
 * in use by another process, a PostgreSQL that does not answer or refuses it) ends
 * the process with a sentence saying so and exit code 1, no stack trace; anything
 * else is rethrown.
 */
export const exitIfUnusable =
  (doing: string) =>
  (error: unknown): never => {
    const problem = error instanceof DataDirInUse ? error.message : databaseProblem(error);
    if (problem === undefined) throw error;
    console.error(`${doing}: ${problem}${problem.endsWith('.') ? '' : '.'}`);
    process.exit(1);
  };
