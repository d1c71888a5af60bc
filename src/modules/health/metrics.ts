import { createHash, timingSafeEqual } from 'node:crypto';
import { Elysia } from 'elysia';
import type { Metrics } from '../../lib/metrics';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * `GET /metrics` (SPEC §15): Prometheus text. With `METRICS_TOKEN` it needs
 * `Authorization: Bearer <token>` (compared in constant time, whatever its length);
 * without one it is open outside production and absent (404) in production. Exempt
 * from the Host check and the HTTPS redirect, like health (lib/security.ts).
 */
export const metricsModule = (
  metrics: Metrics,
  settings: { token: string | undefined; production: boolean },
) => {
  const expected = settings.token === undefined ? undefined : digest(`Bearer ${settings.token}`);
  // Not there at all, so that no method finds it (a 405 would say that it exists).
  if (expected === undefined && settings.production) return new Elysia({ name: 'metrics-module' });
  return new Elysia({ name: 'metrics-module' }).get(
    '/metrics',
    async ({ request, status, set }) => {
      if (
        expected !== undefined &&
        !timingSafeEqual(digest(request.headers.get('authorization') ?? ''), expected)
      ) {
        set.headers['www-authenticate'] = 'Bearer';
        return status(401, { detail: 'A valid metrics token is required' });
      }
      set.headers['content-type'] = metrics.registry.contentType;
      return metrics.registry.metrics();
    },
    { detail: { hide: true } },
  );
};
