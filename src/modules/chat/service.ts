import { HttpError, notFound, retryAfterSeconds, waitInWords } from '../../lib/errors';
import { describeError, FOREIGN_KEY_VIOLATION, hasSqlState, isOutage } from '../../lib/failures';
import type { Logger } from '../../lib/logger';
import type { AuthService } from '../auth/service';
import type { ConversationRepository } from '../conversations/repository';
import type { UsageService } from '../usage/service';
import type { Admission, ChatGate } from './gate';
import {
  CLOSE,
  type ClientFrame,
  type ErrorCode,
  encode,
  type FrameProblem,
  isFrameProblem,
  isUuid,
  MESSAGES,
} from './protocol';
import { type Asked, ConversationGone, type Questions, Refusal } from './questions';
import { Reply, type ReplyBasis, type ReplyOutcome, type ReplyRunner } from './reply';
import type { Rooms } from './rooms';
import type { ChatConnection } from './socket';
import type { ReplyTelemetry } from './telemetry';
import type { Titler } from './titles';

export interface ChatDependencies {
  auth: AuthService;
  repo: ConversationRepository;
  gate: ChatGate;
  replies: ReplyRunner;
  rooms: Rooms;
  questions: Questions;
  telemetry: ReplyTelemetry;
  titles: Titler;
  usage: Pick<UsageService, 'spend' | 'seen'>;
  log: Logger;
  /** Replies in flight, so shutdown can wait for them. */
  track(reply: Promise<unknown>): void;
}

/** How long a reply admitted here waits for the end of another instance's reply its sockets follow. */
const FOLLOWED_END_WAIT_MS = 500;

const REFUSALS = {
  busy: 'ALREADY_PROCESSING',
  limited: 'RATE_LIMIT_EXCEEDED',
  quota: 'QUOTA_EXCEEDED',
} as const satisfies Record<Exclude<Admission['kind'], 'claimed'>, ErrorCode>;

/** A rate-limit or quota refusal's text, saying when a message will be taken again. */
const refusalText = (code: 'RATE_LIMIT_EXCEEDED' | 'QUOTA_EXCEEDED', seconds: number) =>
  code === 'RATE_LIMIT_EXCEEDED'
    ? `Too many messages. Try again in ${waitInWords(seconds)}.`
    : `Your daily quota is used up. It resets at midnight UTC, in ${waitInWords(seconds)}.`;

const finalFrame = (outcome: ReplyOutcome) =>
  outcome.kind === 'complete'
    ? encode.done(outcome.messageId)
    : outcome.kind === 'stopped'
      ? encode.stopped(outcome.messageId)
      : encode.error(outcome.code, outcome.message);

/** The chat protocol of SPEC §6, §11 and §12, one frame at a time, for one connection. */
export const createChatService = (deps: ChatDependencies) => {
  const { log, repo, questions } = deps;

  const fail = (
    connection: ChatConnection,
    code: ErrorCode,
    message: string = MESSAGES[code],
    retryAfter?: number,
  ) => {
    deps.telemetry.error(code);
    return connection.send(encode.error(code, message, retryAfter));
  };

  /**
   * A chat frame could not be checked (the database or the store failed). While a reply
   * streams to its sockets it is refused as busy, which it is: an INTERNAL_ERROR then
   * would read as that reply's end (SPEC §11 lists it among a reply's last frames).
   */
  const unchecked = (connection: ChatConnection, error: unknown) => {
    if (deps.rooms.streaming(connection.conversationId)) return fail(connection, REFUSALS.busy);
    if (isOutage(error)) connection.outage();
    return fail(connection, 'INTERNAL_ERROR');
  };

  /**
   * Sockets whose auth is being checked, and the check: a frame sent right behind its
   * `auth` (a client that does not wait for auth.success) waits for it rather than
   * being refused AUTH_REQUIRED. Kept here, not on the socket, so an idle socket holds
   * nothing for it.
   */
  const checking = new WeakMap<ChatConnection, Promise<void>>();

  const authenticate = (connection: ChatConnection, token: string | undefined) => {
    if (connection.authenticated || connection.authenticating) return; // SPEC: a second auth is ignored
    connection.beginAuth();
    const check = checkAuth(connection, token).finally(() => checking.delete(connection));
    checking.set(connection, check);
    return check;
  };

  const checkAuth = async (connection: ChatConnection, token: string | undefined) => {
    try {
      if (!token) throw new HttpError(401, 'missing token');
      const { user, claims } = await deps.auth.authenticate(token, 'access');
      if (connection.closed) return;
      const owns =
        isUuid(connection.conversationId) && (await repo.isOwner(user.id, connection.conversationId));
      if (connection.closed) return;
      if (!owns) {
        fail(connection, 'NO_CONVERSATION');
        return connection.disconnect(CLOSE.noConversation, 'NO_CONVERSATION');
      }
      connection.signIn(user.id, claims.jti);
      deps.usage.seen(user);
      connection.send(encode.authSuccess(connection.conversationId));
      await deps.rooms.join(connection);
    } catch (error) {
      if (error instanceof HttpError && error.status === 401) {
        fail(connection, 'AUTH_FAILED');
        return connection.disconnect(CLOSE.authFailed, 'AUTH_FAILED');
      }
      // The blacklist or the database could not be asked: never let the socket in.
      log.error({ error: describeError(error) }, 'websocket auth failed on a dependency');
      fail(connection, 'INTERNAL_ERROR');
      connection.disconnect(CLOSE.internalError, 'INTERNAL_ERROR');
    } finally {
      connection.endAuth();
    }
  };

  /**
   * One reply, from admission to its final frame. `asked` is resolved before the
   * claim (a refusal counts against nothing). For chat.message, when this instance
   * remembers the branch and expects the claim to pass, the provider request leaves
   * now and the claim's round trip overlaps the provider's; it is dropped if not.
   */
  const converse = async (
    connection: ChatConnection,
    userId: string,
    asked: Asked,
    /** Ends the frame's admission (rooms.admitting), once its reply has begun. */
    admitted: () => void,
  ) => {
    const conversationId = connection.conversationId;
    const room = deps.rooms.room(conversationId);
    const remembered = asked.tip === 'current' ? room.history : undefined;
    const { question } = asked;
    const early =
      remembered && deps.gate.expects(conversationId, userId, remembered.stamp)
        ? deps.replies.request(questions.remembered(remembered, question))
        : undefined;
    let admission: Admission;
    try {
      admission = await deps.gate.claim(conversationId, userId, room.followed !== undefined);
    } catch (error) {
      early?.cancel();
      log.error({ conversationId, error: describeError(error) }, 'quota could not be checked');
      return unchecked(connection, error);
    }
    if (admission.kind !== 'claimed') {
      early?.cancel();
      if (admission.kind === 'busy') return fail(connection, REFUSALS.busy);
      const code = REFUSALS[admission.kind];
      const seconds = retryAfterSeconds(admission.retryAfterMs);
      return fail(connection, code, refusalText(code, seconds), seconds);
    }
    const { lock, stamp, counted } = admission;
    // What this room remembers is current only if nothing went in since its own reply.
    room.history = undefined;
    const known = remembered?.stamp === stamp ? remembered : undefined;
    // An early request built on a branch that has since moved on is resent.
    if (early && !known) early.cancel();
    // Admitted while another instance's reply still streams to the sockets here: that one
    // released the lock and its end is on its way (or the lock failed open: then `begin`
    // ends it for them). Either way they see one reply at a time (SPEC §11).
    if (room.followed) await deps.rooms.followedOver(room, FOLLOWED_END_WAIT_MS);
    const reply = new Reply(conversationId, connection, userId);
    const audience = deps.rooms.begin(room, reply);
    admitted();
    const telemetry = deps.telemetry.begin();
    let errorCode: ErrorCode | undefined;
    let frame: string;
    let outcome: ReplyOutcome | undefined;
    let basis: ReplyBasis | undefined;
    let gone = false;
    try {
      // An early request already holds the basis it was built on.
      basis =
        known && early
          ? early.basis
          : known
            ? questions.remembered(known, question)
            : await questions.read(conversationId, asked);
      telemetry.model(basis.model);
      outcome = await deps.replies.run(reply, audience, question, (known && early) || basis);
      frame = finalFrame(outcome);
      if (outcome.kind === 'failed') errorCode = outcome.code;
    } catch (error) {
      if (error instanceof ConversationGone || hasSqlState(error, FOREIGN_KEY_VIOLATION)) {
        gone = true;
        errorCode = 'NO_CONVERSATION';
      } else {
        log.error({ conversationId, error: describeError(error) }, 'chat message failed');
        if (isOutage(error)) connection.outage();
        errorCode = 'INTERNAL_ERROR';
      }
      frame = encode.error(errorCode, MESSAGES[errorCode]);
    } finally {
      audience.ending();
      // Recorded before the final frame, so the next message's quota check and a usage
      // read after it see it; off the way to any first token.
      await deps.usage.spend({
        userId,
        messages: counted ? 0 : 1,
        promptTokens: outcome?.usage?.promptTokens ?? 0,
        completionTokens: outcome?.usage?.completionTokens ?? 0,
      });
      // Released before the final frame, so the client may send its next message at once.
      const stamped = await lock.release();
      if (stamped && outcome?.branch && basis)
        room.history = {
          stamp: lock.id,
          model: basis.model,
          systemPrompt: basis.systemPrompt,
          ...outcome.branch,
        };
    }
    audience.end(frame);
    if (errorCode) deps.telemetry.error(errorCode);
    telemetry.end(outcome, errorCode);
    if (gone)
      for (const socket of new Set([connection, ...deps.rooms.socketsOf(conversationId)])) {
        if (!reply.started && socket !== connection) socket.send(frame);
        socket.disconnect(CLOSE.noConversation, 'NO_CONVERSATION');
      }
    // Off the reply's path: after its final frame, with the lock released.
    if (outcome?.kind === 'complete' && basis && !basis.turns.some((turn) => turn.role === 'assistant'))
      deps.titles.suggest(conversationId, basis, reply.text);
  };

  /** Runs a chat frame: its refusals go to the sender alone (SPEC §11). */
  const ask = async (connection: ChatConnection, userId: string, resolve: () => Promise<Asked>) => {
    // From here until its reply begins, a stop for the conversation waits for that reply.
    const admitted = deps.rooms.admitting(connection.conversationId, userId);
    try {
      let asked: Asked;
      try {
        asked = await resolve();
      } catch (error) {
        if (error instanceof Refusal) return fail(connection, error.code, error.message);
        log.error(
          { conversationId: connection.conversationId, error: describeError(error) },
          'chat frame could not be read',
        );
        return unchecked(connection, error);
      }
      return await converse(connection, userId, asked, admitted);
    } finally {
      admitted();
    }
  };

  return {
    /** `POST /api/conversations/{id}/stop`: true when a reply was streaming (SPEC §11). */
    stop: async (userId: string, conversationId: string) => {
      if (!(await repo.isOwner(userId, conversationId))) throw notFound('Conversation not found.');
      return deps.rooms.stop(conversationId);
    },

    /** The socket closed: it leaves its room (and, with CHAT_STOP_ON_DISCONNECT, stops its reply). */
    closed: (connection: ChatConnection) => deps.rooms.leave(connection),

    /** The socket opened: start the in-band auth deadline. */
    open: (connection: ChatConnection, authTimeoutMs: number) => {
      connection.authTimer = setTimeout(() => {
        if (connection.authenticated || connection.closed) return;
        fail(connection, 'AUTH_TIMEOUT');
        connection.disconnect(CLOSE.authFailed, 'AUTH_TIMEOUT');
      }, authTimeoutMs);
    },

    frame: async (connection: ChatConnection, frame: ClientFrame | FrameProblem) => {
      connection.lastSeen = Date.now();
      if (frame.type !== 'auth') {
        const pending = checking.get(connection);
        if (pending) {
          await pending;
          if (connection.closed) return;
        }
      }
      if (isFrameProblem(frame)) {
        if (frame.type === 'auth') return authenticate(connection, undefined);
        // What is not a frame at all (INVALID_JSON, UNKNOWN_TYPE) is said so, signed in or
        // not (SPEC §6.1's order); a chat frame before auth is AUTH_REQUIRED, whatever its fields.
        const chatFrame = frame.type !== undefined && frame.type !== 'chat.stop' && frame.type !== 'pong';
        if (chatFrame && !connection.authenticated) return fail(connection, 'AUTH_REQUIRED');
        return fail(connection, frame.code);
      }
      switch (frame.type) {
        case 'auth':
          return authenticate(connection, frame.token);
        case 'chat.message':
        case 'chat.regenerate':
        case 'chat.edit': {
          const userId = connection.userId;
          if (userId === undefined) return fail(connection, 'AUTH_REQUIRED');
          const { conversationId } = connection;
          const reply = ask(connection, userId, async () => {
            switch (frame.type) {
              case 'chat.message':
                return questions.message(frame.content);
              case 'chat.regenerate':
                return questions.regenerate(conversationId, frame.message_id);
              case 'chat.edit':
                return questions.edit(conversationId, frame.message_id, frame.content);
            }
          });
          deps.track(reply);
          return reply;
        }
        case 'chat.stop':
          // Ignored before auth and when nothing streams (SPEC §11).
          if (connection.authenticated) await deps.rooms.stop(connection.conversationId);
          return;
        case 'pong':
          return;
        default:
          return frame satisfies never;
      }
    },
  };
};

export type ChatService = ReturnType<typeof createChatService>;
