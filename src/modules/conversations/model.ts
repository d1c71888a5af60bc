import { t } from 'elysia';
import { unprocessable } from '../../lib/errors';

export const ConversationParams = t.Object({ id: t.String({ format: 'uuid' }) });

// Taken as digit strings and range-checked by `pagination()`: Elysia's own numeric
// coercion reports failures without naming the parameter.
export const Pagination = t.Object({
  limit: t.Optional(
    t.String({ pattern: '^[0-9]+$', description: 'Page size, 1–100 (default 20)', examples: ['20'] }),
  ),
  offset: t.Optional(
    t.String({ pattern: '^[0-9]+$', description: 'Items to skip, ≥ 0 (default 0)', examples: ['0'] }),
  ),
});

const bounded = (name: string, raw: string | undefined, fallback: number, min: number, max: number) => {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (value >= min && value <= max) return value;
  throw unprocessable([
    { loc: ['query', name], msg: `Must be between ${min} and ${max}.`, type: 'value_error' },
  ]);
};

export const pagination = (query: { limit?: string; offset?: string }) => ({
  limit: bounded('limit', query.limit, 20, 1, 100),
  offset: bounded('offset', query.offset, 0, 0, Number.MAX_SAFE_INTEGER),
});

const Title = t.String({ minLength: 1, maxLength: 255, examples: ['Trip to Kyoto'] });

export const CreateConversationBody = t.Optional(t.Object({ title: t.Optional(Title) }));
export const UpdateConversationBody = t.Object({ title: t.Optional(Title) });

export const Conversation = t.Object({
  id: t.String({ format: 'uuid' }),
  title: t.String(),
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
  message_count: t.Integer(),
});

const Message = t.Object({
  id: t.String({ format: 'uuid' }),
  role: t.Union([t.Literal('user'), t.Literal('assistant')]),
  content: t.String(),
  status: t.Union([t.Literal('complete'), t.Literal('interrupted'), t.Literal('failed')]),
  created_at: t.String({ format: 'date-time' }),
  prompt_tokens: t.Integer(),
  completion_tokens: t.Integer(),
});

export const ConversationPage = t.Object({ items: t.Array(Conversation), count: t.Integer() });
export const MessagePage = t.Object({ items: t.Array(Message), count: t.Integer() });
