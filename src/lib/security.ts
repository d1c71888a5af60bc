import { Elysia } from 'elysia';
import { originCheck } from './cors';
import { HttpError } from './errors';

export interface SecuritySettings {
  production: boolean;
  allowedHosts: string[];
  corsOrigins: string[];
  trustProxy: boolean;
}

const API_CSP = "default-src 'none'; frame-ancestors 'none'";
// Swagger UI needs its own script, styles and inline bootstrap.
const DOCS_CSP =
  "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

// The web app (SPEC §14): its own scripts and styles only; the API and the WebSocket on this origin.
const WEB_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The web app's paths: `/` and its files, everything outside the API, the socket and the probes. */
const isWebPath = (path: string) =>
  path === '/' || !(path.startsWith('/api') || path.startsWith('/ws') || path.startsWith('/metrics'));

/** Probes (health, metrics) are reached by IP over plain HTTP: no Host check, no redirect. */
const PROBES = new Set(['/api/health', '/api/health/', '/metrics', '/metrics/']);

const hostname = (host: string) => {
  // "[::1]:8000" → "[::1]" (brackets kept, as Django keeps them), "example.com:443" → "example.com"
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1).toLowerCase();
  return host.split(':')[0]?.toLowerCase() ?? '';
};

/** The path of an absolute URL without parsing all of it (this runs on every request). */
const pathOf = (url: string) => {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const end = url.indexOf('?', start);
  return start === -1 ? '/' : url.slice(start, end === -1 ? undefined : end);
};

/**
 * Security headers everywhere, and in production the rules of SPEC §8 in order:
 * Host check, then WebSocket Origin check or HTTPS redirect. Health and metrics are
 * exempt so load balancers and Prometheus can reach them by IP over plain HTTP.
 */
/**
 * Whether `host` (a Host header's name, lower case) is allowed, by Django's rules for
 * `ALLOWED_HOSTS`, so that a Django deployment's setting means the same here: `*` is
 * any host, `.example.com` is example.com and every subdomain of it, anything else
 * the name itself. A fully qualified name's trailing dot is ignored.
 */
const hostCheck = (allowed: string[]) => {
  const exact = new Set(allowed.filter((pattern) => !pattern.startsWith('.')));
  const domains = allowed.filter((pattern) => pattern.startsWith('.') && pattern.length > 1);
  if (exact.has('*')) return () => true;
  return (host: string) => {
    const name = host.endsWith('.') ? host.slice(0, -1) : host;
    return exact.has(name) || domains.some((domain) => name.endsWith(domain) || name === domain.slice(1));
  };
};

export const security = (settings: SecuritySettings) => {
  const allowedHost = hostCheck(settings.allowedHosts);
  const allowedOrigin = originCheck(settings.corsOrigins);

  return new Elysia({ name: 'security' }).onRequest(({ request, set }) => {
    const path = pathOf(request.url);
    set.headers['x-content-type-options'] = 'nosniff';
    set.headers['x-frame-options'] = 'DENY';
    set.headers['referrer-policy'] = 'same-origin';
    set.headers['content-security-policy'] = path.startsWith('/api/docs')
      ? DOCS_CSP
      : isWebPath(path)
        ? WEB_CSP
        : API_CSP;
    if (!settings.production) return;
    set.headers['strict-transport-security'] = 'max-age=31536000; includeSubDomains';
    if (PROBES.has(path)) return;

    const host = request.headers.get('host') ?? '';
    if (!allowedHost(hostname(host))) throw new HttpError(400, 'Invalid Host header');

    if (request.headers.get('upgrade')?.toLowerCase() === 'websocket') {
      const origin = request.headers.get('origin');
      if (origin && !allowedOrigin(origin)) throw new HttpError(403, 'WebSocket Origin not allowed');
      return;
    }

    const forwarded = settings.trustProxy
      ? request.headers.get('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase()
      : undefined;
    const scheme = forwarded ?? new URL(request.url).protocol.replace(':', '');
    if (scheme !== 'https') {
      const url = new URL(request.url);
      throw new HttpError(308, 'Use HTTPS', undefined, {
        location: `https://${host}${url.pathname}${url.search}`,
      });
    }
  });
};
