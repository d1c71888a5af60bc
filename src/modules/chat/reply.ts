import { type ChatModel, ModelError, type ModelEvent } from '../../ai';
import { countTextTokens, fitContext } from '../../ai/tokenizer';
import type { MessageStatus } from '../../db/schema';
import type { ConversationRepository } from '../conversations/repository';
import type { ChatConnection, StopReason } from './connection';
import { encode } from './protocol';

export interface ReplySettings {
  systemPrompt: string;
  maxContextTokens: number;
  aiTimeoutMs: number;
}

// Enough turns to fill any sensible context budget; trimming by tokens happens after.
const HISTORY_ROWS = 200;

export type ReplyOutcome =
  | { kind: 'complete'; messageId: string }
  | { kind: 'failed'; code: 'AI_TIMEOUT' | 'AI_ERROR'; message: string }
  | { kind: 'stopped'; reason: StopReason };

const TIMED_OUT = Symbol('timed out');

/**
 * Streams the model's answer to the connection and stores it. The user message is
 * already stored. Deltas go out as they arrive; when the socket is backed up the
 * provider is not read (and the silence timer does not run) until it drains. The
 * assistant message is stored before this returns, with status by outcome.
 */
export const createReplyStreamer = (
  repo: ConversationRepository,
  model: ChatModel,
  settings: ReplySettings,
) => {
  const nextWithin = (events: AsyncIterator<ModelEvent>, ms: number) => {
    let timer: Timer | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), ms);
    });
    const next = events.next();
    next.catch(() => {}); // a rejection after the timeout won is not ours to report
    return Promise.race([next, timeout]).finally(() => clearTimeout(timer));
  };

  return async (connection: ChatConnection, conversationId: string): Promise<ReplyOutcome> => {
    const history = await repo.recentMessages(conversationId, HISTORY_ROWS);
    const context = fitContext(settings.systemPrompt, history, settings.maxContextTokens);
    const controller = new AbortController();
    connection.reply = controller;
    const { signal } = controller;

    let text = '';
    let usage: { promptTokens: number; completionTokens: number } | undefined;
    let failure: ReplyOutcome | undefined;
    const events = model.stream(context.turns, signal)[Symbol.asyncIterator]();
    try {
      while (true) {
        const next = await nextWithin(events, settings.aiTimeoutMs);
        if (next === TIMED_OUT) {
          controller.abort('timeout' satisfies StopReason);
          failure = {
            kind: 'failed',
            code: 'AI_TIMEOUT',
            message: 'The AI provider did not answer in time.',
          };
          break;
        }
        if (next.done) break;
        const event = next.value;
        if (event.type === 'usage') usage = event;
        else if (event.type === 'delta' && !signal.aborted) {
          text += event.text;
          if (connection.send(encode.delta(event.text)) === -1) await connection.drained();
        }
      }
    } catch (error) {
      failure = {
        kind: 'failed',
        code: 'AI_ERROR',
        message: error instanceof ModelError ? error.message : 'The AI provider failed to answer.',
      };
    } finally {
      connection.reply = undefined;
      void events.return?.();
    }

    const stopped = signal.aborted && signal.reason !== 'timeout';
    const outcome: ReplyOutcome | undefined = stopped
      ? { kind: 'stopped', reason: signal.reason as StopReason }
      : failure;
    const status: MessageStatus = !outcome
      ? 'complete'
      : outcome.kind === 'stopped'
        ? 'interrupted'
        : 'failed';
    // When nothing arrived there is nothing to keep; a failure is still reported.
    if (outcome && !text) return outcome;
    const saved = await repo.addMessage({
      conversationId,
      role: 'assistant',
      content: text,
      status,
      promptTokens: usage?.promptTokens || context.promptTokens,
      completionTokens: usage?.completionTokens || countTextTokens(text),
    });
    return outcome ?? { kind: 'complete', messageId: saved.id };
  };
};

export type ReplyStreamer = ReturnType<typeof createReplyStreamer>;
