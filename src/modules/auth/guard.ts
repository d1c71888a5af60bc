import { Elysia } from 'elysia';
import { HttpError } from '../../lib/errors';
import { Detail } from './model';
import type { AuthService } from './service';

const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * `{ auth: true }` on a route: resolves `user` and `token` (the access token's
 * claims) from `Authorization: Bearer …`, or answers 401.
 */
export const authGuard = (auth: AuthService) =>
  new Elysia({ name: 'auth-guard', seed: auth }).macro({
    auth: {
      detail: { security: [{ bearerAuth: [] }] },
      response: { 401: Detail },
      resolve: async ({ headers, status, set }) => {
        const token = BEARER.exec(headers.authorization ?? '')?.[1];
        set.headers['www-authenticate'] = 'Bearer';
        if (!token) return status(401, { detail: 'Authentication credentials were not provided.' });
        try {
          const { user, claims } = await auth.authenticate(token, 'access');
          delete set.headers['www-authenticate'];
          return { user, token: claims };
        } catch (error) {
          if (error instanceof HttpError && error.status === 401)
            return status(401, { detail: String(error.detail), code: error.code });
          throw error;
        }
      },
    },
  });
