import { StoreUnavailableError } from '../store/store';

// Error codes that mean "the database is not there", from postgres.js, Node's
// sockets and PostgreSQL itself (class 08 connection exceptions, 57P0x shutdowns).
const DATABASE_DOWN = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'DATABASE_UNAVAILABLE',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);

const causes = function* (error: unknown) {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) yield e;
};

/** The string codes `error` and what caused it carry (SQLSTATEs, Node's and postgres.js's). */
const codesOf = (error: unknown) =>
  [...causes(error)]
    .map((e) => (e as { code?: unknown }).code)
    .filter((code): code is string => typeof code === 'string');

/** True when `error` (or what caused it) carries PostgreSQL's SQLSTATE `code`, e.g. 23505. */
export const hasSqlState = (error: unknown, code: string) => codesOf(error).includes(code);

export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';
/** NUL in text, for instance. */
export const CHARACTER_NOT_IN_REPERTOIRE = '22021';
export const UNTRANSLATABLE_CHARACTER = '22P05';
/** Text longer than its varchar column. */
export const STRING_DATA_RIGHT_TRUNCATION = '22001';

/** True when `error` (or what caused it) says the database could not be reached. */
export const isDatabaseDown = (error: unknown) => codesOf(error).some((code) => DATABASE_DOWN.has(code));

/**
 * What stops a command or start-up from using the database, as a sentence naming
 * DATABASE_URL (never its value, which may hold a password); undefined when `error`
 * is something else.
 */
export const databaseProblem = (error: unknown): string | undefined => {
  const codes = codesOf(error);
  const said = `(${codes.join(', ')})`;
  if (isDatabaseDown(error)) return `the database DATABASE_URL names did not answer ${said}`;
  // Class 28: invalid authorization; 3D000: no such database.
  if (codes.some((code) => code.startsWith('28')))
    return `the database refused DATABASE_URL's user or password ${said}`;
  if (codes.includes('3D000')) return `the database DATABASE_URL names does not exist ${said}`;
  return undefined;
};

/** True when the database or the store did not answer: HTTP's 503 (SPEC §2, §10). */
export const isOutage = (error: unknown) => error instanceof StoreUnavailableError || isDatabaseDown(error);

/**
 * What may be logged about an error: names and codes only. Query errors carry
 * their parameters (passwords hashes, message content) in the message, so the
 * message itself is never logged.
 */
export const describeError = (error: unknown) =>
  [...causes(error)].map((e) => {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${e.name}(${code})` : e.name;
  });
