import { Type } from '@sinclair/typebox';
import { t } from 'elysia';
import { Pagination } from '../conversations/model';

export const UserParams = t.Object({ id: t.String({ format: 'uuid' }) });

export const UsersQuery = t.Object({
  ...Pagination.properties,
  q: t.Optional(
    t.String({
      description:
        'A case-insensitive substring of the username or the email; 1 to 200 characters, not blank',
    }),
  ),
});

const Quota = t.Union([t.Integer(), t.Null()], {
  description: 'Per UTC day: 0 unlimited, null the server default (QUOTA_DAILY_*)',
});

export const AdminUser = t.Object({
  id: t.String({ format: 'uuid' }),
  username: t.String(),
  email: t.String(),
  date_joined: t.String({ format: 'date-time' }),
  last_login: t.Union([t.String({ format: 'date-time' }), t.Null()]),
  is_active: t.Boolean(),
  is_staff: t.Boolean(),
  daily_token_quota: Quota,
  daily_message_quota: Quota,
});

export const AdminUserPage = t.Object({ items: t.Array(AdminUser), count: t.Integer() });

// TypeBox's own integer: Elysia's `t.Integer` would take "5" for 5.
const QuotaInput = t.Union([Type.Integer({ minimum: 0, maximum: 2_147_483_647 }), t.Null()], {
  description: 'Per UTC day: 0 unlimited, null the server default (QUOTA_DAILY_*)',
  error: 'Must be a whole number from 0 (unlimited) to 2147483647, or null for the default.',
});

/** Fields it does not name are ignored. */
export const UpdateUserBody = t.Object({
  is_active: t.Optional(
    t.Boolean({ description: 'false: their tokens are refused and sockets closed at once' }),
  ),
  is_staff: t.Optional(t.Boolean()),
  daily_token_quota: t.Optional(QuotaInput),
  daily_message_quota: t.Optional(QuotaInput),
});
