import { LRUCache } from 'lru-cache';
import type { UserRow } from '../../db/schema';
import { batchedPerTurn } from '../../lib/batch';
import { describeError, isDatabaseDown } from '../../lib/failures';
import type { Logger } from '../../lib/logger';
import type { DayUsage, Limits, Spending, UsageRepository } from './repository';

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
// Users known to have no daily limit, so their messages need no database read at
// admission. Forgotten when staff change a user (on every instance, through the bus)
// and after a minute in any case.
const UNLIMITED = { max: 10_000, ttl: 60_000 };

export const createUsageService = (repo: UsageRepository, defaults: Limits, log: Logger) => {
  const unlimited = new LRUCache<string, true>(UNLIMITED);
  const noDefaults = defaults.tokens === 0 && defaults.messages === 0;
  // The spending of replies that end in one turn of the event loop: one statement.
  const spend = batchedPerTurn(
    async (items: Spending[]) => {
      await repo.spend(items);
      return items.map(() => undefined);
    },
    (error) => !isDatabaseDown(error),
  );

  const limitsOf = (user: UserRow): Limits => ({
    tokens: user.dailyTokenQuota ?? defaults.tokens,
    messages: user.dailyMessageQuota ?? defaults.messages,
  });

  return {
    /**
     * A chat message (message, regenerate, edit) asks to be admitted: refused when the
     * user's quota for today is used up; counted now (`day`) when a limit applies.
     */
    admit: async (userId: string) => {
      // Measured (bench:ab against the tree before quotas, time to first token p99 per
      // turn): with this read on every message, median 1.17× (lower in 1 of 6 turns);
      // without it, 0.91× (3 of 6).
      if (noDefaults && unlimited.has(userId)) return { refused: false, limited: false };
      const admitted = await repo.admit(userId, defaults);
      if (!admitted.limited) unlimited.set(userId, true);
      return admitted;
    },

    /**
     * A user row just read (a socket's authentication): when it has no daily limit,
     * its first message needs no database read at admission either. A socket's first
     * message is the one a user waits for after opening a conversation; a burst of
     * them after start-up queued behind one read per message (bench/history.md).
     */
    seen: (user: UserRow) => {
      if (!noDefaults) return;
      const limits = limitsOf(user);
      if (limits.messages === 0 && limits.tokens === 0) unlimited.set(user.id, true);
    },

    /** A user's limits changed: read them again at their next message. */
    forget: (userId: string) => {
      unlimited.delete(userId);
    },

    /**
     * What a reply spent: its message (unless admission counted it) and its answer's
     * tokens. Resolves once stored; a failure is logged, never thrown.
     */
    spend: (spent: Spending) =>
      spend(spent).catch((error) =>
        log.warn({ error: describeError(error) }, 'usage not recorded: database unavailable'),
      ),

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
