import { Elysia, t } from 'elysia';
import type { DatabaseHandle } from '../../db/client';
import { withTimeout } from '../../lib/timeout';
import type { Store } from '../../store';

const CHECK_TIMEOUT_MS = 1500;

type Part = 'ok' | 'embedded' | 'error';

/** Resolves to the part's state, never slower than CHECK_TIMEOUT_MS even if it hangs. */
const probe = (check: () => Promise<void>, healthy: Part): Promise<Part> =>
  withTimeout(
    check().then(
      () => healthy,
      () => 'error' as const,
    ),
    CHECK_TIMEOUT_MS,
    'error',
  );

const Health = t.Object({
  status: t.Union([t.Literal('healthy'), t.Literal('unhealthy')]),
  database: t.String(),
  redis: t.String(),
  ai: t.String(),
});

/** `GET /api/health/` (SPEC §3): no auth, answers within 2 s whatever hangs. */
export const healthModule = (database: DatabaseHandle, store: Store, aiMode: 'configured' | 'offline') =>
  new Elysia({ name: 'health-module' }).get(
    '/api/health',
    async ({ status }) => {
      const [db, redis] = await Promise.all([
        probe(database.ping, database.kind === 'postgres' ? 'ok' : 'embedded'),
        probe(() => store.ping(), store.kind === 'redis' ? 'ok' : 'embedded'),
      ]);
      const healthy = db !== 'error' && redis !== 'error';
      return status(healthy ? 200 : 503, {
        status: healthy ? 'healthy' : 'unhealthy',
        database: db,
        redis,
        ai: aiMode,
      });
    },
    {
      response: { 200: Health, 503: Health },
      detail: { tags: ['health'], summary: 'Liveness and dependency check' },
    },
  );
