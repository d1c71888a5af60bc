import type { Static } from 'elysia';
import type { UserRow } from '../../db/schema';
import { notFound, unprocessable } from '../../lib/errors';
import type { UserRepository } from '../auth/repository';
import type { UsageService } from '../usage/service';

import type { UpdateUserBody } from './model';

type UserUpdate = Static<typeof UpdateUserBody>;

const toAdminUserDto = (row: UserRow) => ({
  id: row.id,
  username: row.username,
  email: row.email,
  date_joined: row.dateJoined.toISOString(),
  last_login: row.lastLogin?.toISOString() ?? null,
  is_active: row.isActive,
  is_staff: row.isStaff,
  daily_token_quota: row.dailyTokenQuota,
  daily_message_quota: row.dailyMessageQuota,
});

/** The admin API (SPEC §13): staff only, which its routes check (`staff: true`). */
export const createAdminService = (
  users: UserRepository,
  usage: UsageService,
  events: {
    /** A user was deactivated: their sockets close and their replies stop, on every instance. */
    deactivated(userId: string): void;
    /** A user's daily limits changed: every instance reads them again. */
    limitsChanged(userId: string): Promise<void>;
  },
) => ({
  list: async (q: string | undefined, limit: number, offset: number) => {
    const page = await users.list(q, limit, offset);
    return { items: page.items.map(toAdminUserDto), count: page.count };
  },

  update: async (actor: UserRow, id: string, changes: UserUpdate) => {
    // Staff cannot lock themselves out: the last door back in would be the database.
    if (id === actor.id) {
      const issues = [];
      if (changes.is_active === false)
        issues.push({
          loc: ['body', 'is_active'],
          msg: 'You cannot deactivate yourself.',
          type: 'value_error',
        });
      if (changes.is_staff === false)
        issues.push({
          loc: ['body', 'is_staff'],
          msg: 'You cannot remove your own staff status.',
          type: 'value_error',
        });
      if (issues.length) throw unprocessable(issues);
    }
    const row = await users.update(id, {
      isActive: changes.is_active,
      isStaff: changes.is_staff,
      dailyTokenQuota: changes.daily_token_quota,
      dailyMessageQuota: changes.daily_message_quota,
    });
    if (!row) throw notFound('User not found.');
    if (changes.is_active === false) events.deactivated(id);
    if (changes.daily_token_quota !== undefined || changes.daily_message_quota !== undefined)
      await events.limitsChanged(id);
    return toAdminUserDto(row);
  },

  usage: (days: number) => usage.overall(days),
});

export type AdminService = ReturnType<typeof createAdminService>;
