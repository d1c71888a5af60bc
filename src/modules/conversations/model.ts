import { t } from 'elysia';
import { chars, charsOrNull } from '../../lib/chars';
import { unprocessable } from '../../lib/errors';
import { wholeNumber, wholeNumberIn } from '../../lib/whole-number';

export const ConversationParams = t.Object({ id: t.String({ format: 'uuid' }) });

export const Pagination = t.Object({
  limit: t.Optional(wholeNumber(1, 100, { description: 'Page size, 1–100 (default 20)', examples: ['20'] })),
  offset: t.Optional(
    wholeNumber(0, Number.MAX_SAFE_INTEGER, {
      description: 'Items to skip, ≥ 0 (default 0)',
      examples: ['0'],
    }),
  ),
});

export const pagination = (query: { limit?: string; offset?: string }) => ({
  limit: wholeNumberIn('limit', query.limit, 20, 1, 100),
  offset: wholeNumberIn('offset', query.offset, 0, 0, Number.MAX_SAFE_INTEGER),
});

const Title = chars(1, 255, { examples: ['Trip to Kyoto'] });
const Model = t.Union([t.String({ minLength: 1, maxLength: 200, examples: ['gpt-4o-mini'] }), t.Null()], {
  description: 'One of GET /api/models; null: the default model',
  error: 'Must be one of the models GET /api/models lists, or null for the default.',
});
const SystemPrompt = charsOrNull(4000, {
  description: 'null: the server default (AI_SYSTEM_PROMPT); "": none',
});

export const CreateConversationBody = t.Object({
  title: t.Optional(Title),
  model: t.Optional(Model),
  system_prompt: t.Optional(SystemPrompt),
});
/** A branch switch to anything but a message of this conversation, whatever it is. */
export const NOT_A_MESSAGE_HERE = 'Not a message of this conversation.';

export const UpdateConversationBody = t.Object({
  title: t.Optional(Title),
  model: t.Optional(Model),
  system_prompt: t.Optional(SystemPrompt),
  current_message_id: t.Optional(
    t.String({
      format: 'uuid',
      description: 'Switch to the branch through this message',
      error: NOT_A_MESSAGE_HERE,
    }),
  ),
});

const Feedback = t.Object({
  rating: t.Union([t.Literal('up'), t.Literal('down')]),
  comment: t.Union([t.String(), t.Null()]),
});

/** A conversation as the REST API and the frames show it (SPEC §5, §12). */
export const Conversation = t.Object({
  id: t.String({ format: 'uuid' }),
  title: t.String(),
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
  message_count: t.Integer(),
  model: t.Union([t.String(), t.Null()]),
  system_prompt: t.Union([t.String(), t.Null()]),
  current_message_id: t.Union([t.String({ format: 'uuid' }), t.Null()]),
});

/** A message as the REST API and the frames show it (SPEC §5, §12). */
export const Message = t.Object({
  id: t.String({ format: 'uuid' }),
  role: t.Union([t.Literal('user'), t.Literal('assistant')]),
  content: t.String(),
  status: t.Union([t.Literal('complete'), t.Literal('interrupted'), t.Literal('failed')]),
  created_at: t.String({ format: 'date-time' }),
  prompt_tokens: t.Integer(),
  completion_tokens: t.Integer(),
  parent_id: t.Union([t.String({ format: 'uuid' }), t.Null()]),
  sibling_ids: t.Array(t.String({ format: 'uuid' })),
  feedback: t.Union([Feedback, t.Null()]),
});

export const ConversationPage = t.Object({ items: t.Array(Conversation), count: t.Integer() });
export const SearchQuery = t.Object({
  q: t.String({ description: 'Whitespace-separated terms, each a plain case-insensitive substring' }),
  ...Pagination.properties,
});

/** A search query (conversations, admin users), checked: not blank, at most 200 characters (code points). */
export const searchTermsOf = (q: string) => {
  if (!q.trim() || Array.from(q).length > 200)
    throw unprocessable([
      { loc: ['query', 'q'], msg: 'Must be 1 to 200 characters and not blank.', type: 'value_error' },
    ]);
  return q;
};

export const SearchPage = t.Object({
  items: t.Array(
    t.Object({
      conversation: Conversation,
      message: t.Union([Message, t.Null()], {
        description: 'The newest matching message; null: the title matched',
      }),
      snippet: t.String({ description: 'Plain text around the match' }),
    }),
  ),
  count: t.Integer(),
});

export const MessagePage = t.Object({ items: t.Array(Message), count: t.Integer() });

export const MessageParams = t.Object({
  id: t.String({ format: 'uuid' }),
  message_id: t.String({ format: 'uuid' }),
});

export const FeedbackBody = t.Object({
  rating: t.Union([t.Literal('up'), t.Literal('down'), t.Null()], {
    error: 'Must be "up", "down" or null (no feedback).',
  }),
  comment: t.Optional(charsOrNull(2000)),
});

export const ExportQuery = t.Object({
  format: t.Optional(t.String({ description: 'markdown (default) or json', examples: ['markdown'] })),
});

export const ModelList = t.Object({
  items: t.Array(t.Object({ id: t.String(), default: t.Boolean() })),
});
