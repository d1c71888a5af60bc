import { type ChatModel, type ChatTurn, ModelError, type ModelEvent } from '../../ai';
import { countTextTokens, type FittedContext, fitContext } from '../../ai/tokenizer';
import type { MessageStatus } from '../../db/schema';
import type { ConversationRepository } from '../conversations/repository';
import { MESSAGES } from './protocol';
import { watchdog } from './watchdog';

export interface ReplySettings {
  maxContextTokens: number;
  /**
   * An answer this long is cut off (a model stuck repeating itself, with no token
   * limit of its own, would otherwise stream into memory without end).
   */
  maxAnswerChars: number;
  aiTimeoutMs: number;
  /** Told once per provider call (its first chunk, its end): metrics, never per delta. */
  observer?: ProviderObserver;
}

export interface ProviderObserver {
  firstChunk(model: string, seconds: number): void;
  finished(
    model: string,
    seconds: number,
    errorType: string | undefined,
    usage: TokenUsage | undefined,
  ): void;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

// Enough turns to fill any sensible context budget; trimming by tokens happens after.
export const HISTORY_ROWS = 200;

/** What a reply answers, and with what (the conversation's settings, resolved). */
export interface ReplyBasis {
  model: string;
  /** Empty: no system prompt. */
  systemPrompt: string;
  /** The branch the answer follows, root first, ending with the question. */
  turns: ChatTurn[];
  /**
   * Read with the branch: the conversation had the default title, unchosen by its
   * owner (an automatic title may name it). Undefined when the basis was not read.
   */
  untitled?: boolean;
}

/**
 * The current branch as a reply of this instance left it (its newest turns and last
 * message), the settings that reply used, and its lock id (the stamp, see ChatGate).
 */
export interface RememberedBranch {
  stamp: string;
  turns: ChatTurn[];
  lastId: string;
  model: string;
  systemPrompt: string;
}

/**
 * Where the question comes from: a new user message, stored by the reply after
 * `parentId` (chat.message, chat.edit; `siblingIds` are its future siblings, oldest
 * first), or a stored one answered again (chat.regenerate).
 */
export type ReplyQuestion =
  | { kind: 'new'; content: string; parentId: string | null; siblingIds: string[] }
  | { kind: 'stored'; messageId: string };

/** Why a reply was stopped before its end. */
export type StopReason = 'stopped' | 'disconnect' | 'shutdown';

export type ReplyOutcome = (
  | { kind: 'complete'; messageId: string }
  | { kind: 'failed'; code: 'AI_TIMEOUT' | 'AI_ERROR'; message: string }
  | { kind: 'stopped'; messageId: string | null }
) & {
  /**
   * The current branch as stored once this reply is done (trimmed to the context
   * budget, without the system prompt) and its last message, so the next message
   * need not read them back; unset when the reply did not move the branch to it.
   */
  branch?: { turns: ChatTurn[]; lastId: string };
  /** The tokens of the stored answer (unset when none was stored). */
  usage?: TokenUsage;
};

/**
 * The aborts that end a reply as failed rather than stopped: the provider went
 * silent (the watchdog below), or the answer passed `maxAnswerChars`.
 */
const FAILED_BY = {
  timeout: { kind: 'failed', code: 'AI_TIMEOUT', message: MESSAGES.AI_TIMEOUT },
  'too long': { kind: 'failed', code: 'AI_ERROR', message: 'The answer grew too long and was cut off.' },
} as const satisfies Record<string, ReplyOutcome>;
const failedBy = (reason: unknown) =>
  reason === 'timeout' || reason === 'too long' ? FAILED_BY[reason] : undefined;

/** A provider request on its way, and the context it was built from. */
export interface ProviderRequest {
  context: Promise<FittedContext>;
  basis: ReplyBasis;
  /** When it was sent (performance.now()). */
  sentAt: number;
  controller: AbortController;
  events: AsyncIterator<ModelEvent[]>;
  /** The first `events.next()`, which sent the request. */
  first: Promise<IteratorResult<ModelEvent[]>>;
}

/** The provider's events once `context` is fitted (the tokenizer trimmed it), opened by `open`. */
const openWhenFitted = (
  context: Promise<FittedContext>,
  open: (fitted: FittedContext) => AsyncIterator<ModelEvent[]>,
): AsyncIterator<ModelEvent[]> => {
  const opened = context.then(open);
  return {
    next: async () => (await opened).next(),
    return: async (value?: unknown) => {
      const events = await opened;
      return events.return ? events.return(value) : { done: true, value: undefined };
    },
  };
};

/** Where a reply's frames go: every socket of its conversation (see rooms.ts). */
export interface ReplyAudience {
  /**
   * The answer begins, after the user's message it answers: `message` is that
   * message's JSON when the reply stored it (message.created), else null (regenerate).
   */
  started(reply: Reply, message: string | null): void;
  /**
   * New text of the answer, already added to `reply.text` (it began at `offset`);
   * -1 when a socket is backed up (then wait for `drained`).
   */
  deliver(reply: Reply, texts: string[], offset: number): number;
  drained(): Promise<void>;
}

/**
 * One reply of a conversation: it owns the provider request, the answer so far and
 * the storing of both messages. It belongs to the conversation, not to a socket:
 * sockets come and go and read it (rooms.ts), any of them can stop it.
 */
export class Reply {
  /** The id its assistant message is stored under, known from the start (chat.start). */
  readonly id = Bun.randomUUIDv7();
  /** The user message it answers, once stored. */
  parentId = '';
  /** The answer so far, exactly as sent to the sockets. */
  text = '';
  /** chat.start has gone out. */
  started = false;
  private request: ProviderRequest | undefined;
  private stopReason: StopReason | undefined;

  constructor(
    readonly conversationId: string,
    /** The socket that asked, which `CHAT_STOP_ON_DISCONNECT` ties it to. */
    readonly sender: object,
    /** Whose it is: a user deleted or deactivated has their replies stopped. */
    readonly userId: string,
  ) {}

  /** Ends the reply early: the provider request is aborted, the answer so far kept. */
  stop(reason: StopReason) {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.request?.controller.abort(reason);
  }

  adopt(request: ProviderRequest) {
    this.request = request;
    if (this.stopReason) request.controller.abort(this.stopReason);
  }
}

const messageJson = (id: string, question: Extract<ReplyQuestion, { kind: 'new' }>, createdAt: Date) =>
  JSON.stringify({
    id,
    role: 'user',
    content: question.content,
    status: 'complete',
    created_at: createdAt.toISOString(),
    prompt_tokens: 0,
    completion_tokens: 0,
    parent_id: question.parentId,
    sibling_ids: [...question.siblingIds, id],
    feedback: null,
  });

/**
 * Runs replies: stores the user's message, streams the model's answer to the
 * audience and stores it. The history comes from the caller when it knows it is
 * current (see ChatGate's stamp), otherwise from the database. The provider request
 * goes out before the user's message is written, and the write runs meanwhile: the
 * first delta is held until it has landed, so a message that could not be stored
 * never gets an answer. Deltas go out as they arrive, those that arrived together in
 * one write; when a socket is backed up the provider is not read (and the silence
 * timer does not run) until it drains. The assistant message is stored before `run`
 * returns, with status by outcome.
 *
 * `request` sends the provider request before the message is even admitted (see
 * ChatGate.expects); nothing is stored or sent until `run` takes it over, and
 * `cancel` drops it.
 */
export const createReplyRunner = (
  repo: ConversationRepository,
  model: ChatModel,
  settings: ReplySettings,
) => {
  /** The context for `basis`, and its provider request, sent. */
  const send = (basis: ReplyBasis): ProviderRequest => {
    const context = fitContext(
      basis.systemPrompt,
      basis.turns.slice(-HISTORY_ROWS),
      settings.maxContextTokens,
    );
    const controller = new AbortController();
    const sentAt = performance.now();
    const open = (fitted: FittedContext) =>
      model.stream(fitted.turns, controller.signal, { model: basis.model })[Symbol.asyncIterator]();
    // A context that fits by its bytes is there at once; one the tokenizer trims is not.
    const events = context instanceof Promise ? openWhenFitted(context, open) : open(context);
    const first = events.next();
    // Awaited by `run`, for an early request only once the claim has answered: a
    // provider that fails before then must not make an unhandled rejection (which
    // would end the process).
    first.catch(() => {});
    return { context: Promise.resolve(context), basis, sentAt, controller, events, first };
  };

  /** Stores a new question (not bumping the conversation: the answer does, off the first token's path). */
  const storeQuestion = (reply: Reply, question: ReplyQuestion, audience: ReplyAudience) => {
    if (question.kind === 'stored') {
      reply.parentId = question.messageId;
      reply.started = true;
      audience.started(reply, null);
      return Promise.resolve(undefined);
    }
    const { conversationId } = reply;
    return repo
      .addMessage({
        conversationId,
        parentId: question.parentId,
        role: 'user',
        content: question.content,
        bumps: false,
      })
      .then(
        (stored) => {
          reply.parentId = stored.id;
          reply.started = true;
          audience.started(reply, messageJson(stored.id, question, stored.createdAt));
        },
        // Settles to the failure, so a rejection is never left unobserved.
        (error: unknown) => ({ error }),
      );
  };

  const run = async (
    reply: Reply,
    audience: ReplyAudience,
    question: ReplyQuestion,
    /** What to answer, or the request `request` already sent for it. */
    from: ReplyBasis | ProviderRequest,
  ): Promise<ReplyOutcome> => {
    const { conversationId } = reply;
    const request = 'controller' in from ? from : send(from);
    reply.adopt(request);
    const { controller, events, first } = request;
    const { signal } = controller;
    const silence = watchdog(controller, settings.aiTimeoutMs);
    const userStored = storeQuestion(reply, question, audience);
    const ensureUserStored = async () => {
      const failed = await silence.during(userStored);
      if (!failed) return;
      controller.abort('storage');
      await events.return?.(undefined);
      throw failed.error;
    };

    let usage: TokenUsage | undefined;
    let firstChunk = false;
    let failure: ReplyOutcome | undefined;
    try {
      for (let next = first; ; next = events.next()) {
        const { value: batch, done } = await next;
        if (done) break;
        silence.heard();
        const texts: string[] = [];
        for (const event of batch) {
          if (event.type === 'usage') usage = event;
          else if (!signal.aborted) texts.push(event.text);
        }
        if (!texts.length) continue;
        if (!firstChunk) {
          firstChunk = true;
          settings.observer?.firstChunk(request.basis.model, (performance.now() - request.sentAt) / 1000);
        }
        if (!reply.started) await ensureUserStored(); // once: no extra await per batch
        // Added and sent in one step, so a socket joining in between sees each delta once.
        const offset = reply.text.length;
        for (const text of texts) reply.text += text;
        if (reply.text.length >= settings.maxAnswerChars) controller.abort('too long');
        if (audience.deliver(reply, texts, offset) === -1) await silence.during(audience.drained());
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
    }
    if (!reply.started) await ensureUserStored();
    const abortedAsFailure = signal.aborted ? failedBy(signal.reason) : undefined;
    failure = abortedAsFailure ?? failure;
    const stopped = signal.aborted && !abortedAsFailure;
    const { text } = reply;
    const observe = (counted: TokenUsage | undefined) =>
      settings.observer?.finished(
        request.basis.model,
        (performance.now() - request.sentAt) / 1000,
        failure?.kind === 'failed' ? failure.code : undefined,
        counted,
      );
    const status: MessageStatus = stopped ? 'interrupted' : failure ? 'failed' : 'complete';
    const context = await request.context;
    const kept = context.history;
    // When nothing arrived there is nothing to keep; a failure is still reported, and
    // the message sent still bumps its conversation (a lost bump is not worth an error).
    // A new question is then where the branch ends; a regenerated one is not (the
    // branch stays at the answer it had).
    if ((stopped || failure) && !text) {
      observe(usage);
      await repo.touch(conversationId).catch(() => {});
      const outcome = failure ?? ({ kind: 'stopped', messageId: null } as const);
      return question.kind === 'new'
        ? { ...outcome, branch: { turns: kept, lastId: reply.parentId } }
        : outcome;
    }
    const counted: TokenUsage = {
      promptTokens: usage?.promptTokens || (await context.promptTokens()),
      completionTokens: usage?.completionTokens || (await countTextTokens(text)),
    };
    observe(counted);
    await repo.addMessage({
      id: reply.id,
      conversationId,
      parentId: reply.parentId,
      role: 'assistant',
      content: text,
      status,
      ...counted,
    });
    kept.push({ role: 'assistant', content: text });
    const outcome: ReplyOutcome = stopped
      ? { kind: 'stopped', messageId: reply.id }
      : (failure ?? { kind: 'complete', messageId: reply.id });
    return { ...outcome, branch: { turns: kept, lastId: reply.id }, usage: counted };
  };

  return {
    /** Sends the provider request for `basis` ahead of its admission. */
    request: (basis: ReplyBasis) => {
      const request = send(basis);
      return Object.assign(request, {
        /** Not admitted after all, or built on a stale history: the request is dropped unread. */
        cancel: () => {
          request.controller.abort('cancelled');
          // The stream may sit at its first batch, where the abort is not seen:
          // stopping the iteration lets the reader (and the connection) go.
          request.first.then(() => request.events.return?.(undefined)).catch(() => {});
        },
      });
    },
    run,
  };
};

export type ReplyRunner = ReturnType<typeof createReplyRunner>;
