/**
 * `bun run createsuperuser [--username U] [--email E] [--password P]`: creates a
 * staff superuser, prompting for whatever was not given (the password without echo
 * when run in a terminal). DJANGO_SUPERUSER_PASSWORD-style non-interactive use:
 * pass every flag.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config';
import { openDatabase } from '../src/db/client';
import { migrate } from '../src/db/migrate';
import { exitIfUnusable } from '../src/db/unusable';
import { HttpError } from '../src/lib/errors';
import { createPasswords } from '../src/modules/auth/password';
import { createUserRepository } from '../src/modules/auth/repository';
import { createSuperuser, superuserProblems } from '../src/modules/auth/superuser';

const USAGE = `Usage: bun run createsuperuser [--username U] [--email E] [--password P]

Creates an active staff superuser, asking for whatever is not given (the password
without echo in a terminal). Non-interactive use: pass every flag.`;

const values = (() => {
  try {
    return parseArgs({
      options: {
        username: { type: 'string' },
        email: { type: 'string' },
        password: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
})();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const ask = (question: string) => {
  const answer = prompt(question);
  if (answer === null) {
    console.error(`No input for "${question}"; pass it as a flag instead.`);
    process.exit(2);
  }
  return answer.trim();
};

const askSecret = (question: string) => {
  if (!process.stdin.isTTY) return ask(question);
  Bun.spawnSync(['stty', '-echo'], { stdin: 'inherit' });
  try {
    return ask(question);
  } finally {
    Bun.spawnSync(['stty', 'echo'], { stdin: 'inherit' });
    console.log();
  }
};

const username = values.username ?? ask('Username:');
const email = values.email ?? ask('Email address:');
let password = values.password;
if (password === undefined) {
  password = askSecret('Password:');
  if (askSecret('Password (again):') !== password) {
    console.error("Error: Your passwords didn't match.");
    process.exit(1);
  }
}

// Problems the input shows by itself are told before the database is opened (seconds, embedded).
const problems = superuserProblems({ username, email, password });
if (problems.length) {
  console.error(`Error:\n${problems.join('\n')}`);
  process.exit(1);
}

const config = loadConfig();
const database = await openDatabase(config.database).catch(exitIfUnusable('Cannot create the superuser'));
try {
  await migrate(database.db).catch(exitIfUnusable('Cannot create the superuser'));
  const user = await createSuperuser(
    createUserRepository(database.db),
    createPasswords(config.passwordHashing),
    { username, email, password },
  );
  console.log(`Superuser "${user.username}" created.`);
} catch (error) {
  if (!(error instanceof HttpError)) throw error;
  console.error(`Error:\n${String(error.detail)}`);
  process.exitCode = 1;
} finally {
  await database.close();
}
