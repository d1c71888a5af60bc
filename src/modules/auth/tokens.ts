import { jwt } from '@elysiajs/jwt';
import { t } from 'elysia';
import type { Store } from '../../store';

export type TokenType = 'access' | 'refresh';

export interface TokenClaims {
  sub: string;
  jti: string;
  type: TokenType;
  iat: number;
  exp: number;
}

const Claims = t.Object({
  sub: t.String({ minLength: 1 }),
  jti: t.String({ minLength: 1 }),
  type: t.Union([t.Literal('access'), t.Literal('refresh')]),
  iat: t.Number(),
  exp: t.Number(),
});

export interface TokenSettings {
  secret: string;
  accessMinutes: number;
  refreshDays: number;
}

const blacklistKey = (jti: string) => `blacklist:${jti}`;

/**
 * Issues and checks our HS256 JWTs through @elysiajs/jwt (jose underneath).
 * Verification pins the algorithm (no `none`, no RS/HS confusion), requires every
 * claim, refuses an `iat` in the future and enforces the type.
 */
export const createTokenService = (settings: TokenSettings, store: Store) => {
  const signer = jwt({ name: 'jwt', secret: settings.secret, alg: 'HS256', schema: Claims }).decorator.jwt;
  const lifetimeSeconds = {
    access: settings.accessMinutes * 60,
    refresh: settings.refreshDays * 86_400,
  } satisfies Record<TokenType, number>;

  const issue = (userId: string, type: TokenType) => {
    const iat = Math.floor(Date.now() / 1000);
    return signer.sign({
      sub: userId,
      jti: crypto.randomUUID(),
      type,
      exp: iat + lifetimeSeconds[type],
    });
  };

  /** The claims of a genuine, unexpired token of `type`, or null. Does not consult the blacklist. */
  const decode = async (token: string, type: TokenType): Promise<TokenClaims | null> => {
    const claims = await signer.verify(token, {
      algorithms: ['HS256'],
      requiredClaims: ['sub', 'jti', 'iat', 'exp'],
      maxTokenAge: lifetimeSeconds[type] + 60,
      clockTolerance: 5,
    });
    if (!claims || claims.type !== type) return null;
    return claims as TokenClaims;
  };

  const remainingMs = (claims: TokenClaims) => Math.max(1000, claims.exp * 1000 - Date.now());

  return {
    issuePair: async (userId: string) => ({
      access: await issue(userId, 'access'),
      refresh: await issue(userId, 'refresh'),
    }),
    decode,
    isBlacklisted: (claims: TokenClaims) => store.exists(blacklistKey(claims.jti)),
    /** Blacklists until the token would have expired anyway. */
    blacklist: (claims: TokenClaims) => store.set(blacklistKey(claims.jti), '1', remainingMs(claims)),
    /**
     * Blacklists and reports whether this call was the first to do so, so two
     * concurrent refreshes with one token cannot both succeed.
     */
    consume: (claims: TokenClaims) => store.acquire(blacklistKey(claims.jti), '1', remainingMs(claims)),
  };
};

export type TokenService = ReturnType<typeof createTokenService>;
