import type { UserRow } from '../../db/schema';
import { normalizeEmail } from '../../lib/email';
import { HttpError, retryAfterSeconds, unprocessable, waitInWords } from '../../lib/errors';
import { hasSqlState, UNIQUE_VIOLATION } from '../../lib/failures';
import type { Store } from '../../store';
import {
  emailIssues,
  foldCase,
  normalizeUsername,
  type Passwords,
  passwordIssues,
  usernameIssues,
} from './password';
import type { UserRepository } from './repository';
import type { TokenClaims, TokenService, TokenType } from './tokens';

export interface LockoutPolicy {
  maxFailures: number;
  lockoutMinutes: number;
}

/** A failed login: the same answer whatever was wrong, so nothing is revealed. */
export const invalidCredentials = () =>
  new HttpError(401, 'No active account found with the given credentials', 'authentication_failed');

/** A 401 asking for a Bearer token (`WWW-Authenticate`). */
export const unauthenticated = (detail: string, code?: string) =>
  new HttpError(401, detail, code, { 'WWW-Authenticate': 'Bearer' });

const tokenNotValid = (detail = 'Token is invalid or expired') => unauthenticated(detail, 'token_not_valid');

/** The chat module's part when a user's tokens are void. */
export interface UserSockets {
  /**
   * A new password: their sockets close with 4001; their replies go on. With `tokenId`
   * (a logout), only the sockets that authenticated with that access token.
   */
  signOut(userId: string, tokenId?: string): void;
  /** Deleted: their sockets close with 4001 and their replies stop. */
  shutOut(userId: string): void;
}

/** Registration, login with lockout, token rotation and logout (SPEC §4). */
export const createAuthService = (
  users: UserRepository,
  tokens: TokenService,
  store: Store,
  lockout: LockoutPolicy,
  passwords: Passwords,
  /** What the chat module does on every instance when a user's tokens are void. */
  sockets: UserSockets = { signOut: () => {}, shutOut: () => {} },
) => {
  // Verified against when the username does not exist, so a miss costs as much as a hit.
  const decoyHash = passwords.hash('decoy-password-never-matches-Aa1!');

  const failuresKey = (username: string, ip: string) => `login:failures:${foldCase(username)}:${ip}`;

  const conflict = (taken: { username: boolean; email: boolean }) =>
    new HttpError(
      409,
      taken.username ? 'A user with that username already exists.' : 'A user with that email already exists.',
    );

  /**
   * The user behind a token of `type`: genuine, unexpired, not blacklisted and
   * active. Anything else is a 401; an unreachable store throws (fail closed).
   */
  const authenticate = async (token: string, type: TokenType) => {
    const claims = tokens.decode(token, type);
    if (!claims) throw tokenNotValid();
    if (await tokens.isBlacklisted(claims)) throw tokenNotValid('Token is blacklisted');
    const user = await users.findById(claims.sub);
    if (!user?.isActive) throw tokenNotValid('User not found or inactive');
    if ((claims.gen ?? 0) !== user.tokenGeneration)
      throw tokenNotValid('Token was issued before a password change');
    return { user, claims };
  };

  /** 422 on `field` unless `password` is the user's. */
  const confirm = async (user: UserRow, password: string, field: string) => {
    if (!(await passwords.verify(password, user.password)))
      throw unprocessable([{ loc: ['body', field], msg: 'Password is incorrect.', type: 'value_error' }]);
  };

  return {
    authenticate,

    register: async (input: { username: string; email: string; password: string }) => {
      const username = normalizeUsername(input.username);
      const email = normalizeEmail(input.email);
      const issues = [
        ...usernameIssues(username),
        ...emailIssues(email),
        ...passwordIssues(input.password, username),
      ];
      if (issues.length) throw unprocessable(issues);
      const taken = await users.taken(username, email);
      if (taken.username || taken.email) throw conflict(taken);
      const passwordHash = await passwords.hash(input.password);
      try {
        return await users.insert({ username, email, passwordHash });
      } catch (error) {
        if (hasSqlState(error, UNIQUE_VIOLATION)) throw conflict(await users.taken(username, email));
        throw error;
      }
    },

    login: async (typed: string, password: string, ip: string) => {
      const username = normalizeUsername(typed);
      const key = failuresKey(username, ip);
      const failures = Number((await store.get(key)) ?? 0);
      if (failures >= lockout.maxFailures) {
        const retryAfter = retryAfterSeconds(await store.ttl(key));
        throw new HttpError(
          429,
          `Too many failed login attempts. Try again in ${waitInWords(retryAfter)}.`,
          'account_locked',
          { 'Retry-After': String(retryAfter) },
        );
      }
      // A name stored before usernames were normalized is found as it was typed.
      const user =
        (await users.findByUsername(username)) ??
        (typed !== username ? await users.findByUsername(typed) : undefined);
      const valid = await passwords.verify(password, user?.password ?? (await decoyHash));
      if (!user || !valid || !user.isActive) {
        await store.increment(key, lockout.lockoutMinutes * 60_000);
        throw invalidCredentials();
      }
      await store.del(key);
      await users.touchLastLogin(user.id);
      return { username: user.username, ...(await tokens.issuePair(user.id, user.tokenGeneration)) };
    },

    /** Rotation: the presented refresh token is spent; a second use is refused. */
    refresh: async (refreshToken: string) => {
      const { user, claims } = await authenticate(refreshToken, 'refresh');
      if (!(await tokens.consume(claims))) throw tokenNotValid('Token is blacklisted');
      return tokens.issuePair(user.id, user.tokenGeneration);
    },

    /**
     * SPEC §13: a new password (the rules of §4), after the current one. Every token
     * issued before is refused from now on, WebSocket included: the user's open sockets,
     * all authenticated with such a token, close with 4001 as a deleted user's do. The
     * answer carries a fresh pair so this client stays signed in and reconnects.
     */
    changePassword: async (user: UserRow, current: string, next: string) => {
      await confirm(user, current, 'current_password');
      const issues = passwordIssues(next, user.username).map((issue) => ({
        ...issue,
        loc: ['body', 'new_password'],
      }));
      if (issues.length) throw unprocessable(issues);
      const generation = await users.changePassword(user.id, await passwords.hash(next));
      if (generation === undefined) throw tokenNotValid('User not found or inactive');
      sockets.signOut(user.id);
      return { detail: 'Password changed', ...(await tokens.issuePair(user.id, generation)) };
    },

    /** SPEC §13: the user and everything of theirs goes; their tokens and sockets with them. */
    deleteAccount: async (user: UserRow, password: string) => {
      await confirm(user, password, 'password');
      await users.remove(user.id);
      sockets.shutOut(user.id);
    },

    logout: async (user: UserRow, access: TokenClaims, refreshToken?: string) => {
      const refresh = refreshToken ? tokens.decode(refreshToken, 'refresh') : undefined;
      if (refresh === null || (refresh && refresh.sub !== user.id)) throw tokenNotValid();
      await tokens.blacklist(access);
      if (refresh) await tokens.blacklist(refresh);
      // SPEC §4: refused everywhere, WebSocket included: the sockets it opened close.
      sockets.signOut(user.id, access.jti);
    },
  };
};

export type AuthService = ReturnType<typeof createAuthService>;
