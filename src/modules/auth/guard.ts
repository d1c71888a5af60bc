import { Elysia } from 'elysia';
import type { UserRow } from '../../db/schema';
import { HttpError } from '../../lib/errors';
import { Detail } from './model';
import { type AuthService, unauthenticated } from './service';
import type { TokenClaims } from './tokens';

const BEARER = /^Bearer\s+(\S+)$/i;

const forbidden = () => new HttpError(403, 'You do not have permission to perform this action.');

/**
 * `{ auth: true }` on a route: resolves `user` and `token` (the access token's
 * claims) from `Authorization: Bearer …`, or answers 401. `{ staff: true }` does the
 * same and answers 403 to anyone who is not staff.
 *
 * Both decide before the path, query and body are validated (Elysia's transform
 * stage), as Django Ninja authenticates before it reads the input: an anonymous
 * request is a 401 whatever it sent, never a 422 describing what the route expects.
 */
export const authGuard = (auth: AuthService) => {
  const signedIn = new WeakMap<Request, { user: UserRow; token: TokenClaims }>();

  const check = async (request: Request, authorization: string | undefined, staffOnly: boolean) => {
    const token = BEARER.exec(authorization ?? '')?.[1];
    if (!token) throw unauthenticated('Authentication credentials were not provided.');
    // Its refusals are already 401s asking for a Bearer token; a store away is a 503.
    const { user, claims } = await auth.authenticate(token, 'access');
    if (staffOnly && !user.isStaff) throw forbidden();
    signedIn.set(request, { user, token: claims });
  };

  const resolve = ({ request }: { request: Request }) => {
    const found = signedIn.get(request);
    // The transform ran for this request or refused it; anything else is a bug.
    if (!found) throw new Error('auth guard: no authentication for this request');
    return found;
  };

  const security = { security: [{ bearerAuth: [] }] };
  return new Elysia({ name: 'auth-guard', seed: auth }).macro({
    auth: {
      detail: security,
      response: { 401: Detail },
      transform: ({ request, headers }) => check(request, headers.authorization, false),
      resolve,
    },
    staff: {
      detail: security,
      response: { 401: Detail, 403: Detail },
      transform: ({ request, headers }) => check(request, headers.authorization, true),
      resolve,
    },
  });
};
