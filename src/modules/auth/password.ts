import { isEmail } from '../../lib/email';
import type { ValidationIssue } from '../../lib/errors';
import { MAX_EMAIL_LENGTH } from './model';

const USERNAME = /^[\p{L}\p{M}\p{Nd}@.+\-_]{1,150}$/u;
const MIN_PASSWORD_LENGTH = 12;

const issue = (field: string, msg: string, type = 'value_error'): ValidationIssue => ({
  loc: ['body', field],
  msg,
  type,
});

/**
 * A username as it is stored and looked up: in Unicode's NFKC form, as Django's
 * `normalize_username` makes it, so that spellings that look alike (full-width
 * letters, an accent as a separate mark) name one user rather than two.
 */
export const normalizeUsername = (username: string) => username.normalize('NFKC');

/**
 * Lower case as PostgreSQL's `lower()` makes it, which decides when two usernames are
 * one user: each character on its own, so Σ is σ even at the end of a word and İ is i.
 * `toLowerCase()` follows context (a word-final Σ becomes ς, İ becomes i and a combining
 * dot), so "ΣΑΣ" and "σασ", one user to the database, were two lockout counters.
 */
export const foldCase = (text: string) =>
  Array.from(text, (c) => (c === 'İ' ? 'i' : c.toLowerCase())).join('');

export const usernameIssues = (username: string): ValidationIssue[] =>
  USERNAME.test(username)
    ? []
    : [
        issue(
          'username',
          'Enter a valid username. It may contain only letters, digits and @/./+/-/_ characters (at most 150).',
        ),
      ];

/**
 * What is wrong with `email` as it will be stored (`normalizeEmail`'s form): not an
 * address, or longer than its column, which lower-casing can make it (İ is i and a
 * dot above).
 */
export const emailIssues = (email: string): ValidationIssue[] => {
  if (!isEmail(email)) return [issue('email', 'Enter a valid email address.')];
  if (Array.from(email).length > MAX_EMAIL_LENGTH)
    return [issue('email', `Must be at most ${MAX_EMAIL_LENGTH} characters.`)];
  return [];
};

/** Every password rule of SPEC §4 that `password` breaks, one issue each. */
export const passwordIssues = (password: string, username: string): ValidationIssue[] => {
  const issues: ValidationIssue[] = [];
  const broken = (msg: string) => issues.push(issue('password', msg));
  if ([...password].length < MIN_PASSWORD_LENGTH)
    broken(`Password must be at least ${MIN_PASSWORD_LENGTH} characters long.`);
  if (!/\p{Lu}/u.test(password)) broken('Password must contain at least one upper-case letter.');
  if (!/\p{Ll}/u.test(password)) broken('Password must contain at least one lower-case letter.');
  if (!/\p{Nd}/u.test(password)) broken('Password must contain at least one digit.');
  if (!/[^\p{L}\p{M}\p{Nd}]/u.test(password)) broken('Password must contain at least one special character.');
  if (username && foldCase(password).includes(foldCase(username)))
    broken('Password must not be or contain the username.');
  return issues;
};

/** Argon2id's costs (`PASSWORD_HASH_MEMORY_KIB`, `PASSWORD_HASH_TIME_COST`). */
export interface HashSettings {
  memoryKib: number;
  timeCost: number;
}

/** Hashing with `settings`; a hash made with other settings still verifies (they are in it). */
export const createPasswords = (settings: HashSettings) => ({
  hash: (password: string) =>
    Bun.password.hash(password, {
      algorithm: 'argon2id',
      memoryCost: settings.memoryKib,
      timeCost: settings.timeCost,
    }),
  verify: (password: string, hash: string) => Bun.password.verify(password, hash).catch(() => false),
});

export type Passwords = ReturnType<typeof createPasswords>;
