import { normalizeEmail } from '../../lib/email';
import { HttpError } from '../../lib/errors';
import { emailIssues, normalizeUsername, type Passwords, passwordIssues, usernameIssues } from './password';
import type { UserRepository } from './repository';

type SuperuserInput = { username: string; email: string; password: string };

/** What is wrong with the input by registration's rules alone (no database needed), as readable lines. */
export const superuserProblems = (input: SuperuserInput) => {
  const username = normalizeUsername(input.username);
  return [
    ...usernameIssues(username),
    ...emailIssues(normalizeEmail(input.email)),
    ...passwordIssues(input.password, username),
  ].map((issue) => issue.msg);
};

/**
 * Creates a staff superuser (Django's `createsuperuser`). The same username, email and
 * password rules as registration apply; problems come back as readable lines.
 */
export const createSuperuser = async (users: UserRepository, passwords: Passwords, input: SuperuserInput) => {
  const username = normalizeUsername(input.username);
  const email = normalizeEmail(input.email);
  const problems = superuserProblems(input);
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
