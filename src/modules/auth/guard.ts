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
        const refuse = (detail: string, code?: string) => {
          set.headers['www-authenticate'] = 'Bearer';
          return status(401, { detail, code });
        };
        const token = BEARER.exec(headers.authorization ?? '')?.[1];
        if (!token) return refuse('Authentication credentials were not provided.');
        try {
          const { user, claims } = await auth.authenticate(token, 'access');
          return { user, token: claims };
        } catch (error) {
          if (error instanceof HttpError && error.status === 401)
            return refuse(String(error.detail), error.code);
          throw error;
        }
      },
    },
  });
