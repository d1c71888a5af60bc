import { cors } from '@elysiajs/cors';
import { Elysia } from 'elysia';

const MAX_AGE_SECONDS = 600;

/** A preflight's answer: the plugin's hook has set the origin, methods and headers by now. */
const preflight = ({ set }: { set: { headers: Record<string, string | number> } }) => {
  set.headers['access-control-max-age'] = String(MAX_AGE_SECONDS);
  return new Response(null, { status: 204 });
};

/**
 * Whether a browser's `Origin` is one of `origins` (`*`: any), compared exactly: for
 * CORS here and for the production WebSocket check (lib/security.ts).
 */
export const originCheck = (origins: string[]) => {
  const listed = new Set(origins);
  return listed.has('*') ? () => true : (origin: string) => listed.has(origin);
};

/**
 * CORS for `origins` (`*` for any). Preflights are answered by routes of their own,
 * not by the plugin's request hook: an answer from that hook skips the rest of the
 * request's life, so a preflight was never logged or counted (SPEC §15: every request
 * is logged once).
 */
export const corsPolicy = (origins: string[]) => {
  // A function, not the list: the plugin looks a listed origin up with `in` on a plain
  // object, so `Origin: constructor` or `toString` was reflected as allowed.
  const allowed = originCheck(origins);
  return new Elysia({ name: 'cors-policy' })
    .use(
      cors({
        origin: origins.includes('*') ? true : (request) => allowed(request.headers.get('origin') ?? ''),
        credentials: true,
        methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
        // A client may send its own request id (SPEC §15), and read it back, a lockout's
        // Retry-After and an export's file name. Named, because the plugin's default
        // echoes the request's own header names as the ones exposed.
        allowedHeaders: ['Content-Type', 'Authorization', 'X-Request-Id'],
        exposeHeaders: ['X-Request-Id', 'Retry-After', 'Content-Disposition'],
        maxAge: MAX_AGE_SECONDS,
        preflight: false,
      }),
    )
    .options('/', preflight, { detail: { hide: true } })
    .options('/*', preflight, { detail: { hide: true } });
};
