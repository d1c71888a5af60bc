import type { ChatTurn } from '../../ai';
import { HttpError, notFound } from '../../lib/errors';
import { describeError, FOREIGN_KEY_VIOLATION, hasSqlState } from '../../lib/failures';
import type { Logger } from '../../lib/logger';
import { cleanContent, codePointLength } from '../../lib/sanitize';
import type { AuthService } from '../auth/service';
import type { ConversationRepository } from '../conversations/repository';
import type { ChatGate } from './gate';
import {
  CLOSE,
  type ClientFrame,
  type ErrorCode,
  encode,
  type FrameProblem,
  isFrameProblem,
  MESSAGES,
} from './protocol';
import { Reply, type ReplyOutcome, type ReplyRunner } from './reply';
import type { Rooms } from './rooms';
import type { ChatConnection } from './socket';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ChatDependencies {
  auth: AuthService;
  repo: ConversationRepository;
  gate: ChatGate;
  replies: ReplyRunner;
  rooms: Rooms;
  log: Logger;
  maxMessageLength: number;
  /** Replies in flight, so shutdown can wait for them. */
  track(reply: Promise<unknown>): void;
}

const finalFrame = (outcome: ReplyOutcome) =>
  outcome.kind === 'complete'
    ? encode.done(outcome.messageId)
    : outcome.kind === 'stopped'
      ? encode.stopped(outcome.messageId)
      : encode.error(outcome.code, outcome.message);

/** The chat protocol of SPEC §6 and §11, one frame at a time, for one connection. */
export const createChatService = (deps: ChatDependencies) => {
  const { log } = deps;

  const fail = (connection: ChatConnection, code: ErrorCode, message: string = MESSAGES[code]) =>
    connection.send(encode.error(code, message));

  const authenticate = async (connection: ChatConnection, token: string | undefined) => {
    if (connection.authenticated || connection.authenticating) return; // SPEC: a second auth is ignored
    connection.authenticating = true;
    try {
      if (!token) throw new HttpError(401, 'missing token');
      const { user } = await deps.auth.authenticate(token, 'access');
      if (connection.closed) return;
      const owns =
        UUID.test(connection.conversationId) && (await deps.repo.isOwner(user.id, connection.conversationId));
      if (connection.closed) return;
      if (!owns) {
        fail(connection, 'NO_CONVERSATION');
        return connection.disconnect(CLOSE.noConversation, 'NO_CONVERSATION');
      }
      connection.signIn(user.id);
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
      connection.authenticating = false;
    }
  };

  const chat = async (connection: ChatConnection, userId: string, content: string) => {
    if (codePointLength(content) > deps.maxMessageLength)
      return fail(
        connection,
        'MESSAGE_TOO_LONG',
        `Message is too long: at most ${deps.maxMessageLength} characters.`,
      );
    const text = cleanContent(content);
    if (!text) return fail(connection, 'EMPTY_CONTENT');

    const conversationId = connection.conversationId;
    const room = deps.rooms.room(conversationId);
    const remembered = room.history;
    // When this instance expects the claim to pass, the provider request leaves now
    // and the claim's round trip overlaps the provider's; it is dropped if not.
    const early =
      remembered && deps.gate.expects(conversationId, userId, remembered.stamp)
        ? deps.replies.request(remembered.turns, text)
        : undefined;
    const admission = await deps.gate.claim(conversationId, userId);
    if (admission.kind !== 'claimed') {
      early?.cancel();
      return fail(connection, admission.kind === 'busy' ? 'ALREADY_PROCESSING' : 'RATE_LIMIT_EXCEEDED');
    }
    const { lock, stamp } = admission;
    // The history this room remembers is current only if no reply went in since its own.
    room.history = undefined;
    const known = remembered?.stamp === stamp ? remembered?.turns : undefined;
    // An early request built on a history another reply has since moved on is resent.
    if (early && !known) early.cancel();
    const reply = new Reply(conversationId, connection);
    const audience = deps.rooms.begin(room, reply);
    let frame: string;
    let history: ChatTurn[] | undefined;
    let gone = false;
    try {
      const outcome = await deps.replies.run(reply, audience, text, (known && early) || known);
      history = outcome.history;
      frame = finalFrame(outcome);
    } catch (error) {
      if (hasSqlState(error, FOREIGN_KEY_VIOLATION)) {
        // The conversation was deleted (through REST) while this socket was open.
        gone = true;
        frame = encode.error('NO_CONVERSATION', MESSAGES.NO_CONVERSATION);
      } else {
        log.error({ conversationId, error: describeError(error) }, 'chat message failed');
        frame = encode.error('INTERNAL_ERROR', MESSAGES.INTERNAL_ERROR);
      }
    } finally {
      audience.ending();
      // Released before the final frame, so the client may send its next message at once.
      if ((await lock.release()) && history) room.history = { stamp: lock.id, turns: history };
    }
    audience.end(frame);
    if (gone)
      for (const socket of new Set([connection, ...deps.rooms.socketsOf(conversationId)])) {
        if (!reply.started && socket !== connection) socket.send(frame);
        socket.disconnect(CLOSE.noConversation, 'NO_CONVERSATION');
      }
  };

  return {
    /** `POST /api/conversations/{id}/stop`: true when a reply was streaming (SPEC §11). */
    stop: async (userId: string, conversationId: string) => {
      if (!(await deps.repo.isOwner(userId, conversationId))) throw notFound('Conversation not found.');
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
      if (isFrameProblem(frame)) {
        if (frame.type === 'auth') return authenticate(connection, undefined);
        if (frame.type === 'chat.message' && !connection.authenticated)
          return fail(connection, 'AUTH_REQUIRED');
        return fail(connection, frame.code);
      }
      switch (frame.type) {
        case 'auth':
          return authenticate(connection, frame.token);
        case 'chat.message': {
          const userId = connection.userId;
          if (userId === undefined) return fail(connection, 'AUTH_REQUIRED');
          const reply = chat(connection, userId, frame.content);
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
