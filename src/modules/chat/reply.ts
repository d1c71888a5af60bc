import { type ChatModel, type ChatTurn, ModelError, type ModelEvent } from '../../ai';
import { countTextTokens, fitContext } from '../../ai/tokenizer';
import type { MessageStatus } from '../../db/schema';
import type { ConversationRepository } from '../conversations/repository';
import type { ChatConnection, StopReason } from './connection';
import { encode, MESSAGES } from './protocol';

export interface ReplySettings {
  systemPrompt: string;
  maxContextTokens: number;
  aiTimeoutMs: number;
}

// Enough turns to fill any sensible context budget; trimming by tokens happens after.
const HISTORY_ROWS = 200;

export type ReplyOutcome = (
  | { kind: 'complete'; messageId: string }
  | { kind: 'failed'; code: 'AI_TIMEOUT' | 'AI_ERROR'; message: string }
  | { kind: 'stopped'; reason: StopReason }
) & {
  /**
   * The conversation as stored once this reply is done (trimmed to the context
   * budget, without the system prompt), so the next message on this socket need not
   * read it back from the database.
   */
  history?: ChatTurn[];
};

/** A provider request on its way, and the context it was built from. */
export interface ProviderRequest {
  context: ReturnType<typeof fitContext>;
  controller: AbortController;
  events: AsyncIterator<ModelEvent[]>;
  /** The first `events.next()`, which sent the request. */
  first: Promise<IteratorResult<ModelEvent[]>>;
}

/**
 * Stores the user's message, streams the model's answer to the connection and
 * stores it. The history comes from the caller when it knows it is current (see
 * ChatGate's stamp), otherwise from the database. The provider request goes out
 * before the user's message is written, and the write runs meanwhile: the first
 * delta is held until it has landed, so a message that could not be stored never
 * gets an answer. Deltas go out as they arrive, a frame each, those that arrived
 * together in one write (corked: one system call, not one per token); when the
 * socket is backed up the provider is not read (and the silence timer does not run)
 * until it drains. The assistant message is stored before this returns, with status
 * by outcome.
 *
 * `start` sends the provider request before the message is even admitted (see
 * ChatGate.expects); nothing is stored or sent to the socket until `stream` takes
 * that request over, and `cancel` drops it.
 */
export const createReplyStreamer = (
  repo: ConversationRepository,
  model: ChatModel,
  settings: ReplySettings,
) => {
  /**
   * Aborts with 'timeout' once the provider has been silent for `aiTimeoutMs`. One
   * timer per reply, re-armed lazily, rather than a timer and a race per token; it
   * does not count while the socket is backed up (`paused`).
   */
  const watchdog = (controller: AbortController) => {
    const state = { lastEvent: Date.now(), paused: false };
    let timer: Timer;
    const check = () => {
      if (controller.signal.aborted) return;
      const silent = Date.now() - state.lastEvent;
      if (!state.paused && silent >= settings.aiTimeoutMs) controller.abort('timeout' satisfies StopReason);
      else timer = setTimeout(check, state.paused ? settings.aiTimeoutMs : settings.aiTimeoutMs - silent);
    };
    timer = setTimeout(check, settings.aiTimeoutMs);
    return Object.assign(state, { stop: () => clearTimeout(timer) });
  };

  /** The context for `userMessage` after `earlier`, and its provider request, sent. */
  const send = (connection: ChatConnection, earlier: ChatTurn[], userMessage: string): ProviderRequest => {
    const history = [...earlier.slice(-(HISTORY_ROWS - 1)), { role: 'user', content: userMessage } as const];
    const context = fitContext(settings.systemPrompt, history, settings.maxContextTokens);
    const controller = new AbortController();
    connection.reply = controller;
    const events = model.stream(context.turns, controller.signal)[Symbol.asyncIterator]();
    const first = events.next();
    // Awaited by `stream`, for an early request only once the claim has answered: a
    // provider that fails before then must not make an unhandled rejection (which
    // would end the process).
    first.catch(() => {});
    return { context, controller, events, first };
  };

  const stream = async (
    connection: ChatConnection,
    conversationId: string,
    userMessage: string,
    /** The history when it is known to be current, or the request `start` sent from it. */
    from?: ChatTurn[] | ProviderRequest,
  ): Promise<ReplyOutcome> => {
    const { context, controller, events, first } =
      from && !Array.isArray(from)
        ? from
        : send(
            connection,
            from ?? (await repo.recentMessages(conversationId, HISTORY_ROWS - 1)),
            userMessage,
          );
    const { signal } = controller;
    const silence = watchdog(controller);
    // Settles to the failure, if any, so a rejection is never left unobserved; once
    // stored, a delta goes out without awaiting anything. It does not bump the
    // conversation: the reply does when it is stored, off the first token's path.
    let userSaved = false;
    const userStored = repo
      .addMessage({ conversationId, role: 'user', content: userMessage, bumps: false })
      .then(
        () => {
          userSaved = true;
        },
        (error: unknown) => ({ error }),
      );
    const ensureUserStored = async () => {
      const failed = await userStored;
      silence.lastEvent = Date.now(); // the wait was ours, not the provider's silence
      if (!failed) return;
      controller.abort('storage');
      await events.return?.(undefined);
      throw failed.error;
    };

    let text = '';
    let usage: { promptTokens: number; completionTokens: number } | undefined;
    let failure: ReplyOutcome | undefined;
    try {
      for (let next = first; ; next = events.next()) {
        const { value: batch, done } = await next;
        if (done) break;
        silence.lastEvent = Date.now();
        const frames: string[] = [];
        for (const event of batch) {
          if (event.type === 'usage') usage = event;
          else if (!signal.aborted) {
            text += event.text;
            frames.push(encode.delta(event.text));
          }
        }
        if (!frames.length) continue;
        if (!userSaved) await ensureUserStored(); // once: no extra await per batch
        // A frame per delta, all of a batch in one write.
        if (connection.sendAll(frames) === -1) {
          silence.paused = true;
          await connection.drained();
          silence.paused = false;
          silence.lastEvent = Date.now();
        }
      }
    } catch (error) {
      if (signal.reason === 'storage') throw error;
      failure = {
        kind: 'failed',
        code: 'AI_ERROR',
        message: error instanceof ModelError ? error.message : MESSAGES.AI_ERROR,
      };
    } finally {
      silence.stop();
      connection.reply = undefined;
    }
    if (!userSaved) await ensureUserStored();
    if (signal.reason === 'timeout')
      failure = { kind: 'failed', code: 'AI_TIMEOUT', message: MESSAGES.AI_TIMEOUT };

    const stopped = signal.aborted && signal.reason !== 'timeout';
    const outcome: ReplyOutcome | undefined = stopped
      ? { kind: 'stopped', reason: signal.reason as StopReason }
      : failure;
    const status: MessageStatus = !outcome
      ? 'complete'
      : outcome.kind === 'stopped'
        ? 'interrupted'
        : 'failed';
    const kept = context.turns.slice(1);
    // When nothing arrived there is nothing to keep; a failure is still reported, and
    // the message sent still bumps its conversation (a lost bump is not worth an error).
    if (outcome && !text) {
      await repo.touch(conversationId).catch(() => {});
      return { ...outcome, history: kept };
    }
    const messageId = await repo.addMessage({
      conversationId,
      role: 'assistant',
      content: text,
      status,
      promptTokens: usage?.promptTokens || context.promptTokens(),
      completionTokens: usage?.completionTokens || countTextTokens(text),
    });
    kept.push({ role: 'assistant', content: text });
    return { ...(outcome ?? { kind: 'complete', messageId }), history: kept };
  };

  return {
    /** Sends the provider request for `userMessage` after `history` ahead of its admission. */
    start: (connection: ChatConnection, history: ChatTurn[], userMessage: string) => {
      const request = send(connection, history, userMessage);
      return Object.assign(request, {
        /** Not admitted after all, or built on a stale history: the request is dropped unread. */
        cancel: () => {
          request.controller.abort('cancelled');
          if (connection.reply === request.controller) connection.reply = undefined;
          // The stream may sit at its first batch, where the abort is not seen:
          // stopping the iteration lets the reader (and the connection) go.
          request.first.then(() => request.events.return?.(undefined)).catch(() => {});
        },
      });
    },
    stream,
  };
};

export type ReplyStreamer = ReturnType<typeof createReplyStreamer>;
