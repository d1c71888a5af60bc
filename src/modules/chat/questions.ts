import type { ChatTurn } from '../../ai';
import type { MessageRole } from '../../db/schema';
import { cleanContent, codePointLength } from '../../lib/sanitize';
import { isUuid } from '../../lib/uuid';
import type { ConversationRepository } from '../conversations/repository';
import { type ErrorCode, MESSAGES } from './protocol';
import { HISTORY_ROWS, type RememberedBranch, type ReplyBasis, type ReplyQuestion } from './reply';

/** The conversation was deleted (through REST) while its socket was open. */
export class ConversationGone extends Error {}

/** A frame refused before anything was claimed or stored: its code and message, to the sender alone. */
export class Refusal extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string = MESSAGES[code],
  ) {
    super(message);
  }
}

/**
 * What a chat frame asks for, resolved before its admission: the question, and where
 * the branch it follows ends ('current' for chat.message: whatever the branch ends at
 * once the lock is held).
 */
export interface Asked {
  question: ReplyQuestion;
  tip: string | null | 'current';
}

export interface QuestionSettings {
  maxMessageLength: number;
  /** `OPENAI_MODEL` and `AI_SYSTEM_PROMPT`: what a conversation's null settings mean. */
  defaults: { model: string; systemPrompt: string };
  /**
   * `AI_MODELS`. A conversation whose model has since left them (the operator took it
   * off) is answered by the default model rather than failing on every message.
   */
  models: readonly string[];
}

/**
 * chat.message, chat.regenerate and chat.edit (SPEC §6, §12) turned into what a reply
 * answers: the question, checked (refusals are `Refusal`s, nothing stored), and once
 * admitted the basis it is answered on — the conversation's settings and the branch
 * up to the question, read from the database or taken from what the room remembers.
 */
export const createQuestions = (repo: ConversationRepository, settings: QuestionSettings) => {
  const offered = new Set(settings.models);
  const modelOf = (chosen: string | null) =>
    chosen !== null && offered.has(chosen) ? chosen : settings.defaults.model;

  /** Content as a new user message takes it (SPEC §6.2), or the refusal. */
  const cleaned = (content: string) => {
    if (codePointLength(content) > settings.maxMessageLength)
      throw new Refusal(
        'MESSAGE_TOO_LONG',
        `Message is too long: at most ${settings.maxMessageLength} characters.`,
      );
    const text = cleanContent(content);
    if (!text) throw new Refusal('EMPTY_CONTENT');
    return text;
  };

  /** A message of this conversation with the given role, or MESSAGE_NOT_FOUND. */
  const messageOf = async (conversationId: string, messageId: string | undefined, role: MessageRole) => {
    const message =
      messageId !== undefined && isUuid(messageId)
        ? await repo.message(conversationId, messageId)
        : undefined;
    if (!message || message.role !== role) throw new Refusal('MESSAGE_NOT_FOUND');
    return message;
  };

  /** The turns a new question adds to `earlier`; a stored one is the last of them already. */
  const withQuestion = (question: ReplyQuestion, earlier: ChatTurn[]): ChatTurn[] =>
    question.kind === 'new' ? [...earlier, { role: 'user', content: question.content }] : earlier;

  return {
    message: (content: string): Asked => ({
      question: { kind: 'new', content: cleaned(content), parentId: null, siblingIds: [] },
      tip: 'current',
    }),

    /** The answer named (or the branch's last) is answered again; a question whose answer failed is answered. */
    regenerate: async (conversationId: string, messageId: string | undefined): Promise<Asked> => {
      let answered: { role: MessageRole; id: string; parentId: string | null };
      if (messageId !== undefined) answered = await messageOf(conversationId, messageId, 'assistant');
      else {
        const lastId = (await repo.byId(conversationId))?.currentMessageId;
        const last = lastId ? await repo.message(conversationId, lastId) : undefined;
        if (!last) throw new Refusal('MESSAGE_NOT_FOUND');
        answered = last;
      }
      const questionId = answered.role === 'assistant' ? answered.parentId : answered.id;
      if (!questionId) throw new Refusal('MESSAGE_NOT_FOUND');
      return { question: { kind: 'stored', messageId: questionId }, tip: questionId };
    },

    /** A new user message beside `messageId` (same parent), answered. */
    edit: async (conversationId: string, messageId: string, content: string): Promise<Asked> => {
      const text = cleaned(content);
      const original = await messageOf(conversationId, messageId, 'user');
      return {
        question: {
          kind: 'new',
          content: text,
          parentId: original.parentId,
          siblingIds: original.siblingIds,
        },
        tip: original.parentId,
      };
    },

    /** The basis read from the database (the lock is held, so the branch is as it stays). */
    read: async (conversationId: string, asked: Asked): Promise<ReplyBasis> => {
      const context = await repo.context(conversationId, asked.tip, HISTORY_ROWS);
      if (!context) throw new ConversationGone();
      const { question } = asked;
      if (question.kind === 'new' && asked.tip === 'current') question.parentId = context.currentMessageId;
      return {
        model: modelOf(context.model),
        systemPrompt: context.systemPrompt ?? settings.defaults.systemPrompt,
        turns: withQuestion(question, context.turns),
        untitled: context.untitled,
      };
    },

    /** The basis from what a room remembers of the current branch (chat.message only). */
    remembered: (kept: RememberedBranch, question: ReplyQuestion): ReplyBasis => {
      if (question.kind === 'new') question.parentId = kept.lastId;
      return {
        model: kept.model,
        systemPrompt: kept.systemPrompt,
        turns: withQuestion(question, kept.turns),
      };
    },
  };
};

export type Questions = ReturnType<typeof createQuestions>;
