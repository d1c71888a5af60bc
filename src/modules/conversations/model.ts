import { t } from 'elysia';

export const ConversationParams = t.Object({ id: t.String({ format: 'uuid' }) });

export const Pagination = t.Object({
  limit: t.Integer({ minimum: 1, maximum: 100, default: 20 }),
  offset: t.Integer({ minimum: 0, default: 0 }),
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

export const Message = t.Object({
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
