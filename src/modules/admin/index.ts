import { Elysia } from 'elysia';
import { authGuard } from '../auth/guard';
import { Detail, ValidationDetail } from '../auth/model';
import type { AuthService } from '../auth/service';
import { pagination } from '../conversations/model';
import { daysOf, OverallUsage, UsageQuery } from '../usage/model';
import { AdminUser, AdminUserPage, UpdateUserBody, UserParams, UsersQuery } from './model';
import type { AdminService } from './service';

/** `/api/admin/*` (SPEC §13): staff only; anyone else gets 403. */
export const adminModule = (auth: AuthService, admin: AdminService) =>
  new Elysia({ name: 'admin-module', seed: admin })
    .use(authGuard(auth))
    .group('/api/admin', { detail: { tags: ['admin'] } }, (app) =>
      app
        .get(
          '/users',
          ({ user, query }) => {
            admin.staff(user);
            const page = pagination(query);
            return admin.list(query.q, page.limit, page.offset);
          },
          {
            auth: true,
            query: UsersQuery,
            response: { 200: AdminUserPage, 403: Detail },
            detail: { summary: 'List users, newest first; q searches usernames and emails' },
          },
        )
        .patch(
          '/users/:id',
          ({ user, params, body }) => {
            admin.staff(user);
            return admin.update(user, params.id, body);
          },
          {
            auth: true,
            params: UserParams,
            body: UpdateUserBody,
            response: { 200: AdminUser, 403: Detail, 404: Detail, 422: ValidationDetail },
            detail: {
              summary: 'Activate or deactivate a user, set staff status and daily quotas',
            },
          },
        )
        .get(
          '/usage',
          ({ user, query }) => {
            admin.staff(user);
            return admin.usage(daysOf(query));
          },
          {
            auth: true,
            query: UsageQuery,
            response: { 200: OverallUsage, 403: Detail },
            detail: { summary: 'Usage per UTC day over all users, and the ten who spent the most' },
          },
        ),
    );
