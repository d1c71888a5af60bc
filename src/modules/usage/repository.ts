import { sql } from 'drizzle-orm';
import { type Database, rowsOf } from '../../db/client';
import { usageDays, users } from '../../db/schema';

/** Limits per UTC day; 0: unlimited. */
export interface Limits {
  tokens: number;
  messages: number;
}

/** What one reply spent (messages: 1 unless admission counted it already). */
export interface Spending {
  userId: string;
  messages: number;
  promptTokens: number;
  completionTokens: number;
}

export interface DayUsage {
  date: string;
  messages: number;
  prompt_tokens: number;
  completion_tokens: number;
}

interface DayRow {
  date: string;
  messages: number | string;
  prompt_tokens: number | string;
  completion_tokens: number | string;
}

// bigint sums come back as strings from postgres.js and numbers from PGlite.
const toDay = (row: DayRow): DayUsage => ({
  date: row.date,
  messages: Number(row.messages),
  prompt_tokens: Number(row.prompt_tokens),
  completion_tokens: Number(row.completion_tokens),
});

/** Today in UTC by the database's clock, the one every count is dated with. */
const TODAY = sql`(now() at time zone 'utc')::date`;

/**
 * SQL for `usage_days` (SPEC §13). Messages are counted here at admission; the tokens
 * of stored answers are added by the statement that stores them (message-writes.ts).
 */
export const createUsageRepository = (db: Database) => ({
  /**
   * The admission check, in one statement: the user's limits (their own, else
   * `defaults`) and, when one applies, today's count of messages goes up by one unless
   * a limit is used up. The check runs on the locked row, so two instances admitting
   * at once cannot both take the last place. A user without limits costs a primary-key
   * read and no write: their message is counted with the reply's spending (`spend`),
   * off the way to the first token. `day`: what the count went to (undefined: nothing
   * counted); `refused`: a limit is used up.
   */
  admit: async (userId: string, defaults: Limits) => {
    const result = await db.execute(sql`
      with limits as (
        select coalesce(${users.dailyMessageQuota}, ${defaults.messages}) as messages,
               coalesce(${users.dailyTokenQuota}, ${defaults.tokens}) as tokens
        from ${users} where ${users.id} = ${userId}
      ),
      counted as (
        insert into ${usageDays} as d (user_id, day, messages)
        select ${userId}, ${TODAY}, 1 from limits where limits.messages > 0 or limits.tokens > 0
        on conflict (user_id, day) do update set messages = d.messages + 1
        where ((select messages from limits) = 0 or d.messages < (select messages from limits))
          and ((select tokens from limits) = 0
               or d.prompt_tokens + d.completion_tokens < (select tokens from limits))
        returning to_char(d.day, 'YYYY-MM-DD') as day
      )
      select (select day from counted) as day,
             coalesce((select messages > 0 or tokens > 0 from limits), false) as limited`);
    const [row] = rowsOf<{ day: string | null; limited: boolean }>(result);
    const limited = Boolean(row?.limited);
    const day = row?.day ?? undefined;
    return { day, limited, refused: limited && day === undefined };
  },

  /**
   * Adds what replies spent to their users' usage of today: messages not counted at
   * admission and the tokens of stored answers, one row per user.
   */
  spend: async (spent: Spending[]) => {
    await db.execute(sql`
      insert into ${usageDays} as d (user_id, day, messages, prompt_tokens, completion_tokens)
      select s.user_id, ${TODAY}, sum(s.messages), sum(s.prompt_tokens), sum(s.completion_tokens)
      from json_to_recordset(${JSON.stringify(
        spent.map((s) => ({
          user_id: s.userId,
          messages: s.messages,
          prompt_tokens: s.promptTokens,
          completion_tokens: s.completionTokens,
        })),
      )}::json) as s(user_id uuid, messages integer, prompt_tokens bigint, completion_tokens bigint)
      -- A user deleted meanwhile has nothing left to count.
      where exists (select 1 from ${users} u where u.id = s.user_id)
      group by s.user_id
      on conflict (user_id, day) do update set
        messages = d.messages + excluded.messages,
        prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = d.completion_tokens + excluded.completion_tokens`);
  },

  /** Takes back a message `admit` counted on `day` that was refused after all. */
  refund: async (userId: string, day: string) => {
    await db.execute(sql`update ${usageDays} set messages = greatest(messages - 1, 0)
      where user_id = ${userId} and day = ${day}::date`);
  },

  /**
   * Every UTC day of the last `days` (today included), oldest first, zeros included:
   * one user's, or everybody's summed when `userId` is null.
   */
  days: async (userId: string | null, days: number): Promise<DayUsage[]> => {
    const result = await db.execute(sql`
      select to_char(g.day, 'YYYY-MM-DD') as date,
             coalesce(sum(u.messages), 0) as messages,
             coalesce(sum(u.prompt_tokens), 0) as prompt_tokens,
             coalesce(sum(u.completion_tokens), 0) as completion_tokens
      from generate_series(${TODAY} - ${days - 1}::int, ${TODAY}, interval '1 day') as g(day)
      left join ${usageDays} u on u.day = g.day::date
        and (${userId}::uuid is null or u.user_id = ${userId}::uuid)
      group by g.day order by g.day`);
    return rowsOf<DayRow>(result).map(toDay);
  },

  /** What the user spent today (UTC), and when today ends. */
  today: async (userId: string) => {
    const result = await db.execute(sql`
      select coalesce(u.messages, 0) as messages,
             coalesce(u.prompt_tokens + u.completion_tokens, 0) as tokens,
             to_char(${TODAY} + 1, 'YYYY-MM-DD') as tomorrow
      from (select 1) as one
      left join ${usageDays} u on u.user_id = ${userId} and u.day = ${TODAY}`);
    const [row] = rowsOf<{ messages: number | string; tokens: number | string; tomorrow: string }>(result);
    return {
      messages: Number(row?.messages ?? 0),
      tokens: Number(row?.tokens ?? 0),
      resetsAt: `${row?.tomorrow}T00:00:00.000Z`,
    };
  },

  /** The users who spent the most tokens over the last `days`, at most `limit`. */
  top: async (days: number, limit: number) => {
    const result = await db.execute(sql`
      select u.user_id as id, us.username,
             sum(u.messages) as messages,
             sum(u.prompt_tokens) as prompt_tokens,
             sum(u.completion_tokens) as completion_tokens
      from ${usageDays} u join ${users} us on us.id = u.user_id
      where u.day > ${TODAY} - ${days}::int
      group by u.user_id, us.username
      order by sum(u.prompt_tokens + u.completion_tokens) desc, sum(u.messages) desc, us.username
      limit ${limit}`);
    return rowsOf<Omit<DayRow, 'date'> & { id: string; username: string }>(result).map((row) => ({
      id: row.id,
      username: row.username,
      messages: Number(row.messages),
      prompt_tokens: Number(row.prompt_tokens),
      completion_tokens: Number(row.completion_tokens),
    }));
  },
});

export type UsageRepository = ReturnType<typeof createUsageRepository>;
