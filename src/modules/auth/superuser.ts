import { isEmail, normalizeEmail } from '../../lib/email';
import { HttpError } from '../../lib/errors';
import { MAX_EMAIL_LENGTH } from './model';
import { normalizeUsername, type Passwords, passwordIssues, usernameIssues } from './password';
import type { UserRepository } from './repository';

/**
 * Creates a staff superuser (Django's `createsuperuser`). The same username and
 * password rules as registration apply; problems come back as readable lines.
 */
export const createSuperuser = async (
  users: UserRepository,
  passwords: Passwords,
  input: { username: string; email: string; password: string },
) => {
  const username = normalizeUsername(input.username);
  const problems = [...usernameIssues(username), ...passwordIssues(input.password, username)].map(
    (issue) => issue.msg,
  );
  const email = normalizeEmail(input.email);
  if (!isEmail(email) || Array.from(email).length > MAX_EMAIL_LENGTH)
    problems.push('Enter a valid email address.');
  const taken = await users.taken(username, email);
  if (taken.username) problems.push('A user with that username already exists.');
  if (taken.email) problems.push('A user with that email already exists.');
  if (problems.length) throw new HttpError(422, problems.join('\n'));
  return users.insert({
    username,
    email,
    passwordHash: await passwords.hash(input.password),
    isStaff: true,
    isSuperuser: true,
  });
};
