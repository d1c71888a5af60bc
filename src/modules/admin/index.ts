import { Elysia } from 'elysia';
import { JSON_BODIES } from '../../lib/input';
import { authGuard } from '../auth/guard';
import { Detail, ValidationDetail } from '../auth/model';
import type { AuthService } from '../auth/service';
import { pagination, searchTermsOf } from '../conversations/model';
import { daysOf, OverallUsage, UsageQuery } from '../usage/model';
import { AdminUser, AdminUserPage, UpdateUserBody, UserParams, UsersQuery } from './model';
import type { AdminService } from './service';

/** `/api/admin/*` (SPEC §13): staff only; anyone else gets 403 (the guard's `staff: true`). */
export const adminModule = (auth: AuthService, admin: AdminService) =>
  new Elysia({ name: 'admin-module', seed: admin })
    .use(authGuard(auth))
    .group('/api/admin', { detail: { tags: ['admin'] } }, (app) =>
      app
        .get(
          '/users',
          ({ query }) => {
            const page = pagination(query);
            return admin.list(
              query.q === undefined ? undefined : searchTermsOf(query.q),
              page.limit,
              page.offset,
            );
          },
          {
            staff: true,
            query: UsersQuery,
            response: { 200: AdminUserPage },
            detail: { summary: 'List users, newest first; q searches usernames and emails' },
          },
        )
        .patch('/users/:id', ({ user, params, body }) => admin.update(user, params.id, body), {
          staff: true,
          params: UserParams,
          parse: JSON_BODIES,
          body: UpdateUserBody,
          response: { 200: AdminUser, 404: Detail, 422: ValidationDetail },
          detail: {
            summary: 'Activate or deactivate a user, set staff status and daily quotas',
          },
        })
        .get('/usage', ({ query }) => admin.usage(daysOf(query)), {
          staff: true,
          query: UsageQuery,
          response: { 200: OverallUsage },
          detail: { summary: 'Usage per UTC day over all users, and the ten who spent the most' },
        }),
    );
