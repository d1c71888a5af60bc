import { t } from 'elysia';
import { wholeNumber, wholeNumberIn } from '../../lib/whole-number';

export const UsageQuery = t.Object({
  days: t.Optional(wholeNumber(1, 366, { description: 'UTC days back from today, 1–366 (default 30)' })),
});

export const daysOf = (query: { days?: string }) => wholeNumberIn('days', query.days, 30, 1, 366);

const Counts = {
  messages: t.Integer({ description: 'Accepted messages, regenerates and edits included' }),
  prompt_tokens: t.Integer(),
  completion_tokens: t.Integer(),
};

const Day = t.Object({ date: t.String({ examples: ['2026-12-02'] }), ...Counts });
const Total = t.Object(Counts);

export const Usage = t.Object({
  days: t.Array(Day, { description: 'Every UTC day of the range, oldest first' }),
  total: Total,
  quota: t.Object({
    daily_tokens: t.Union([t.Integer(), t.Null()], { description: 'null: unlimited' }),
    daily_messages: t.Union([t.Integer(), t.Null()], { description: 'null: unlimited' }),
    used_tokens_today: t.Integer({ description: 'Prompt + completion tokens today (UTC)' }),
    used_messages_today: t.Integer(),
    resets_at: t.String({ format: 'date-time', description: 'The next midnight UTC' }),
  }),
});

export const OverallUsage = t.Object({
  days: t.Array(Day),
  total: Total,
  top_users: t.Array(t.Object({ id: t.String({ format: 'uuid' }), username: t.String(), ...Counts }), {
    description: 'At most 10, most tokens (prompt + completion) first',
  }),
});
