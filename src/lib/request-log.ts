import { Elysia } from 'elysia';
import type { Logger } from './logger';

/**
 * One JSON line per HTTP request: method, path (never the query string), status
 * and duration. Bodies and headers are never logged, so neither are credentials.
 */
export const requestLog = (log: Logger) =>
  new Elysia({ name: 'request-log' })
    .derive({ as: 'global' }, () => ({ startedAt: performance.now() }))
    .onAfterResponse({ as: 'global' }, ({ request, path, set, startedAt, responseValue }) => {
      // Errors answer with a Response of their own; set.status only knows the rest.
      const status = responseValue instanceof Response ? responseValue.status : set.status;
      log.info(
        {
          method: request.method,
          path,
          status: typeof status === 'number' ? status : 200,
          ms: Math.round((performance.now() - (startedAt ?? performance.now())) * 10) / 10,
        },
        'request',
      );
    });
