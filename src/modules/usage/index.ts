import { Elysia } from 'elysia';
import { authGuard } from '../auth/guard';
import type { AuthService } from '../auth/service';
import { daysOf, Usage, UsageQuery } from './model';
import type { UsageService } from './service';

/** `GET /api/usage` (SPEC §13): the signed-in user's own. */
export const usageModule = (auth: AuthService, usage: UsageService) =>
  new Elysia({ name: 'usage-module', seed: usage })
    .use(authGuard(auth))
    .get('/api/usage', ({ user, query }) => usage.report(user, daysOf(query)), {
      auth: true,
      query: UsageQuery,
      response: { 200: Usage },
      detail: {
        tags: ['usage'],
        summary: 'Messages and tokens per UTC day, and the daily quota',
      },
    });
