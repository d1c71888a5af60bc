import type { UserRow } from '../../db/schema';
import type { DayUsage, Limits, UsageRepository } from './repository';

// At most this many users in the admin report's top list (SPEC §13).
const TOP_USERS = 10;

const totalOf = (days: DayUsage[]) => ({
  messages: days.reduce((sum, day) => sum + day.messages, 0),
  prompt_tokens: days.reduce((sum, day) => sum + day.prompt_tokens, 0),
  completion_tokens: days.reduce((sum, day) => sum + day.completion_tokens, 0),
});

/** A limit as the API shows it: 0 (unlimited) is null. */
const shown = (limit: number) => (limit === 0 ? null : limit);

/** Usage per UTC day and the daily quotas (SPEC §13). `defaults`: `QUOTA_DAILY_*`. */
export const createUsageService = (repo: UsageRepository, defaults: Limits) => {
  const limitsOf = (user: UserRow): Limits => ({
    tokens: user.dailyTokenQuota ?? defaults.tokens,
    messages: user.dailyMessageQuota ?? defaults.messages,
  });

  return {
    /**
     * Counts an accepted chat message (message, regenerate, edit) unless the user's
     * quota for today is used up: the day it was counted on, or undefined (refused).
     */
    admit: (userId: string) => repo.admit(userId, defaults),

    /** The message `admit` counted was refused after all (busy, rate limited). */
    refund: (userId: string, day: string) => repo.refund(userId, day),

    /** `GET /api/usage`. */
    report: async (user: UserRow, days: number) => {
      const [series, today] = await Promise.all([repo.days(user.id, days), repo.today(user.id)]);
      const limits = limitsOf(user);
      return {
        days: series,
        total: totalOf(series),
        quota: {
          daily_tokens: shown(limits.tokens),
          daily_messages: shown(limits.messages),
          used_tokens_today: today.tokens,
          used_messages_today: today.messages,
          resets_at: today.resetsAt,
        },
      };
    },

    /** `GET /api/admin/usage`: every user's, summed, and who spent the most. */
    overall: async (days: number) => {
      const [series, top] = await Promise.all([repo.days(null, days), repo.top(days, TOP_USERS)]);
      return { days: series, total: totalOf(series), top_users: top };
    },
  };
};

export type UsageService = ReturnType<typeof createUsageService>;
