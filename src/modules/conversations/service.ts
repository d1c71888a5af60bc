import { DEFAULT_TITLE } from '../../db/schema';
import { HttpError, notFound, unprocessable } from '../../lib/errors';
import { cleanContent } from '../../lib/sanitize';
import { type MessageDto, toMessageDto } from './messages';
import { NOT_A_MESSAGE_HERE } from './model';
import {
  type ConversationChanges,
  type ConversationDto,
  type ConversationRepository,
  toConversationDto,
} from './repository';

const missing = () => notFound('Conversation not found');
const invalid = (loc: (string | number)[], msg: string) => unprocessable([{ loc, msg, type: 'value_error' }]);

/** Titles are plain text, cleaned like messages; nothing left means the default. */
const cleanTitle = (title: string | undefined) =>
  title === undefined ? undefined : cleanContent(title) || DEFAULT_TITLE;

/** What the chat side does about a change to a conversation (wired in app.ts). */
export interface ConversationEvents {
  /** Runs a branch switch while no reply streams in the conversation; undefined when one does. */
  whileIdle<T>(conversationId: string, change: () => Promise<T>): Promise<T | undefined>;
  /** The settings changed: a reply starting from now on reads them again. */
  changed(conversationId: string): Promise<void>;
  /** Tells every socket of the conversation (`conversation` is its JSON). */
  updated(conversationId: string, conversation: string): void;
  /** The conversation is deleted: its reply stops and its sockets close, on every instance. */
  removed(conversationId: string): void;
}

export interface ConversationSettings {
  /** `AI_MODELS`, the default (`OPENAI_MODEL`) first among equals. */
  models: string[];
  defaultModel: string;
}

export interface SettingsInput {
  title?: string;
  model?: string | null;
  system_prompt?: string | null;
}

/**
 * A title as a file name: ASCII letters, digits and dashes, never empty. Accents go
 * with their combining marks ("naïve café" is `naive-cafe`).
 */
const slug = (title: string) =>
  title
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80)
    .replace(/-+$/, '') || 'conversation';

/**
 * A title on one line: an owner's title may hold line breaks and tabs, which would end
 * the Markdown heading early (the rest read as body text) or vanish from a file name.
 */
const oneLine = (title: string) => title.replace(/\s+/gu, ' ').trim();

const markdownOf = (conversation: ConversationDto, messages: MessageDto[]) =>
  `${[
    `# ${oneLine(conversation.title)}`,
    ...messages.map((m) => `## ${m.role === 'user' ? 'User' : 'Assistant'}\n\n${m.content}`),
  ].join('\n\n')}\n`;

/** Conversations belong to one user; anyone else gets 404, never a hint they exist. */
export const createConversationService = (
  repo: ConversationRepository,
  settings: ConversationSettings,
  events: ConversationEvents,
) => {
  const get = async (userId: string, id: string) => {
    const row = await repo.find(userId, id);
    if (!row) throw missing();
    return toConversationDto(row);
  };

  /** The changes a body asks for, checked: a model must be one of AI_MODELS. */
  const changesOf = (body: SettingsInput | undefined): ConversationChanges => {
    const model = body?.model;
    if (typeof model === 'string' && !settings.models.includes(model))
      throw invalid(['body', 'model'], `Unknown model. Choose one of: ${settings.models.join(', ')}.`);
    return { title: cleanTitle(body?.title), model, systemPrompt: body?.system_prompt };
  };

  const ownedMessage = async (userId: string, id: string, messageId: string) => {
    if (!(await repo.isOwner(userId, id))) throw missing();
    const message = await repo.message(id, messageId);
    if (!message) throw notFound('Message not found');
    return message;
  };

  return {
    get,

    /** `GET /api/conversations/search` (SPEC §13). */
    search: async (userId: string, q: string, limit: number, offset: number) => {
      const found = await repo.search(userId, q, limit, offset);
      return {
        items: found.items.map((item) => ({
          conversation: toConversationDto(item.conversation),
          message: item.message ? toMessageDto(item.message) : null,
          snippet: item.snippet,
        })),
        count: found.count,
      };
    },

    list: async (userId: string, limit: number, offset: number) => {
      const page = await repo.list(userId, limit, offset);
      return { items: page.items.map(toConversationDto), count: page.count };
    },

    create: async (userId: string, body?: SettingsInput) =>
      get(userId, await repo.create(userId, changesOf(body))),

    /**
     * PATCH: title, settings and the current branch (SPEC §12). A branch switch waits
     * for no reply: while one streams it is 409. Every socket of the conversation
     * hears of the result.
     */
    update: async (userId: string, id: string, body: SettingsInput & { current_message_id?: string }) => {
      const changes = changesOf(body);
      if (!(await repo.isOwner(userId, id))) throw missing();
      const target = body.current_message_id;
      if (target !== undefined) {
        if (!(await repo.message(id, target)))
          throw invalid(['body', 'current_message_id'], NOT_A_MESSAGE_HERE);
        const switched = await events.whileIdle(id, () => repo.switchBranch(id, target));
        if (switched === undefined)
          throw new HttpError(
            409,
            'A reply is being generated in this conversation; stop it or wait.',
            'reply_in_progress',
          );
      }
      if (!(await repo.update(userId, id, changes))) throw missing();
      if (changes.model !== undefined || changes.systemPrompt !== undefined) await events.changed(id);
      const conversation = await get(userId, id);
      events.updated(id, JSON.stringify(conversation));
      return conversation;
    },

    remove: async (userId: string, id: string) => {
      if (!(await repo.remove(userId, id))) throw missing();
      events.removed(id);
    },

    /** The current branch, root first (SPEC §12). */
    messages: async (userId: string, id: string, limit: number, offset: number) => {
      if (!(await repo.isOwner(userId, id))) throw missing();
      const page = await repo.branch(id, limit, offset);
      return { items: page.items.map(toMessageDto), count: page.count };
    },

    /** Replaces an answer's feedback; `rating: null` removes it. */
    feedback: async (
      userId: string,
      id: string,
      messageId: string,
      body: { rating: 'up' | 'down' | null; comment?: string | null },
    ) => {
      const message = await ownedMessage(userId, id, messageId);
      if (message.role !== 'assistant') throw invalid(['path', 'message_id'], 'Only answers take feedback.');
      const feedback = body.rating ? { rating: body.rating, comment: body.comment ?? null } : null;
      const updated = await repo.setFeedback(id, messageId, feedback);
      if (!updated) throw notFound('Message not found');
      return toMessageDto(updated);
    },

    /** The current branch as a file: its name, type and text (SPEC §12). */
    export: async (userId: string, id: string, format: string | undefined) => {
      const kind = format ?? 'markdown';
      if (kind !== 'markdown' && kind !== 'json')
        throw invalid(['query', 'format'], 'Must be markdown or json.');
      const conversation = await get(userId, id);
      const page = await repo.branch(id, Number.MAX_SAFE_INTEGER, 0);
      const messages = page.items.map(toMessageDto);
      const extension = kind === 'json' ? 'json' : 'md';
      // The ASCII name for every client, the title itself for those that read filename*:
      // without what a file name cannot hold, without leading dots (a hidden file, or
      // `....etcpasswd` from "../../etc/passwd"), at most 100 characters.
      const readable = [...oneLine(conversation.title)]
        .filter((c) => c >= ' ' && c !== '\u007f' && !'"\\/:*?<>|'.includes(c))
        .slice(0, 100)
        .join('')
        .replace(/^[.\s]+|[.\s]+$/g, '');
      return {
        filename: `${slug(conversation.title)}.${extension}`,
        utf8Filename: `${readable || slug(conversation.title)}.${extension}`,
        type: kind === 'json' ? 'application/json' : 'text/markdown; charset=utf-8',
        body:
          kind === 'json'
            ? JSON.stringify({ conversation, messages }, null, 2)
            : markdownOf(conversation, messages),
      };
    },

    models: () => ({ items: settings.models.map((id) => ({ id, default: id === settings.defaultModel })) }),
  };
};

export type ConversationService = ReturnType<typeof createConversationService>;
