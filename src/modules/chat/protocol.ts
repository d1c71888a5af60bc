import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type Static, t } from 'elysia';
import { Conversation, Message } from '../conversations/model';

/** Client → server frames (SPEC §6, §11). */
const AuthFrame = t.Object({ type: t.Literal('auth'), token: t.String({ minLength: 1 }) });
const ChatMessageFrame = t.Object({ type: t.Literal('chat.message'), content: t.String() });
const ChatRegenerateFrame = t.Object({
  type: t.Literal('chat.regenerate'),
  message_id: t.Optional(t.String()),
});
const ChatEditFrame = t.Object({ type: t.Literal('chat.edit'), message_id: t.String(), content: t.String() });
const ChatStopFrame = t.Object({ type: t.Literal('chat.stop') });
const PongFrame = t.Object({ type: t.Literal('pong') });
export const ClientFrame = t.Union([
  AuthFrame,
  ChatMessageFrame,
  ChatRegenerateFrame,
  ChatEditFrame,
  ChatStopFrame,
  PongFrame,
]);
export type ClientFrame = Static<typeof ClientFrame>;

/** Server → client frames (SPEC §6, §11). */
export const ServerFrame = t.Union([
  t.Object({ type: t.Literal('auth.success'), conversation_id: t.String() }),
  t.Object({ type: t.Literal('message.created'), message: Message }),
  t.Object({ type: t.Literal('chat.start'), message_id: t.String(), parent_id: t.String() }),
  t.Object({
    type: t.Literal('chat.stream'),
    content: t.String(),
    done: t.Boolean(),
    message_id: t.Optional(t.Union([t.String(), t.Null()])),
    status: t.Optional(t.Literal('interrupted')),
  }),
  t.Object({
    type: t.Literal('chat.resume'),
    message_id: t.String(),
    parent_id: t.String(),
    content: t.String(),
  }),
  t.Object({ type: t.Literal('conversation.updated'), conversation: Conversation }),
  t.Object({
    type: t.Literal('chat.error'),
    error: t.String(),
    code: t.String(),
    /** RATE_LIMIT_EXCEEDED and QUOTA_EXCEEDED: seconds until a message would be accepted again. */
    retry_after: t.Optional(t.Integer({ minimum: 1 })),
  }),
  t.Object({ type: t.Literal('ping') }),
]);
export type ServerFrame = Static<typeof ServerFrame>;

/** A conversation id as the database stores them (anything else names no conversation). */
export { isUuid } from '../../lib/uuid';

/** Every `chat.error` code of SPEC §6.1. */
export type ErrorCode = keyof typeof MESSAGES;

/** WebSocket close codes we use. */
export const CLOSE = {
  goingAway: 1001,
  internalError: 1011,
  authFailed: 4001,
  noConversation: 4004,
  heartbeatTimeout: 4008,
  /** A socket that took nothing for a while as the others of its conversation read on (rooms.ts). */
  tryAgainLater: 1013,
} as const;

const checkers = {
  auth: TypeCompiler.Compile(AuthFrame),
  'chat.message': TypeCompiler.Compile(ChatMessageFrame),
  'chat.regenerate': TypeCompiler.Compile(ChatRegenerateFrame),
  'chat.edit': TypeCompiler.Compile(ChatEditFrame),
  'chat.stop': TypeCompiler.Compile(ChatStopFrame),
  pong: TypeCompiler.Compile(PongFrame),
} as const;
type FrameType = keyof typeof checkers;

/** Why a frame was refused before reaching a handler: the code and, if known, its type. */
export type FrameProblem = { code: ErrorCode; type?: FrameType };

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);

/**
 * Turns a raw frame (text, or a Buffer for binary) into a typed frame. Anything
 * but a JSON object is INVALID_JSON; an unknown or missing type is UNKNOWN_TYPE.
 * A well-typed frame with a bad field reports its type, so the handler can
 * answer in that step's terms (AUTH_FAILED, EMPTY_CONTENT).
 */
export const parseClientFrame = (message: unknown): ClientFrame | FrameProblem => {
  let value = message;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return { code: 'INVALID_JSON' };
    }
  }
  if (!isRecord(value)) return { code: 'INVALID_JSON' };
  const type = value.type;
  if (typeof type !== 'string' || !Object.hasOwn(checkers, type)) return { code: 'UNKNOWN_TYPE' };
  const frameType = type as FrameType;
  if (checkers[frameType].Check(value)) return value as ClientFrame;
  return { code: problemOf(frameType, value), type: frameType };
};

/** The code of a frame of a known type with a bad field: the field's own step's. */
const problemOf = (type: FrameType, frame: Record<string, unknown>): ErrorCode => {
  if (type === 'auth') return 'AUTH_FAILED';
  if (type === 'chat.regenerate') return 'MESSAGE_NOT_FOUND';
  if (type === 'chat.edit' && typeof frame.content === 'string') return 'MESSAGE_NOT_FOUND';
  return 'EMPTY_CONTENT';
};

export const isFrameProblem = (frame: ClientFrame | FrameProblem): frame is FrameProblem => 'code' in frame;

/** Encoders for the frames sent on the hot path, without building objects per token. */
export const encode = {
  delta: (content: string) => `{"type":"chat.stream","content":${JSON.stringify(content)},"done":false}`,
  done: (messageId: string) => `{"type":"chat.stream","content":"","done":true,"message_id":"${messageId}"}`,
  /** A stopped reply's end: its message id, or null when nothing had arrived and nothing was stored. */
  stopped: (messageId: string | null) =>
    `{"type":"chat.stream","content":"","done":true,"message_id":${messageId ? `"${messageId}"` : 'null'},"status":"interrupted"}`,
  /** `message` is the stored message's JSON (the REST shape). */
  messageCreated: (message: string) => `{"type":"message.created","message":${message}}`,
  start: (messageId: string, parentId: string) =>
    `{"type":"chat.start","message_id":"${messageId}","parent_id":"${parentId}"}`,
  resume: (messageId: string, parentId: string, content: string) =>
    `{"type":"chat.resume","message_id":"${messageId}","parent_id":"${parentId}","content":${JSON.stringify(content)}}`,
  /** `retryAfter`: seconds until the refused message would be accepted (rate limit, quota). */
  error: (code: ErrorCode, error: string, retryAfter?: number) =>
    JSON.stringify(
      retryAfter === undefined
        ? { type: 'chat.error', error, code }
        : { type: 'chat.error', error, code, retry_after: retryAfter },
    ),
  /** `conversation` is the conversation's JSON (the REST shape). */
  conversationUpdated: (conversation: string) =>
    `{"type":"conversation.updated","conversation":${conversation}}`,
  authSuccess: (conversationId: string) =>
    JSON.stringify({ type: 'auth.success', conversation_id: conversationId }),
  ping: '{"type":"ping"}',
};

/** The default text of each error code; its keys are the codes (SPEC §6.1). */
export const MESSAGES = {
  INVALID_JSON: 'Frames must be JSON objects.',
  UNKNOWN_TYPE: 'Unknown or missing message type.',
  AUTH_REQUIRED: 'Authenticate first: send {"type":"auth","token":"<access token>"}.',
  AUTH_FAILED: 'Authentication failed: the token is invalid, expired or revoked.',
  AUTH_TIMEOUT: 'Authentication timed out.',
  NO_CONVERSATION: 'Conversation not found.',
  RATE_LIMIT_EXCEEDED: 'Too many messages. Wait a moment and try again.',
  ALREADY_PROCESSING: 'A reply in this conversation is still being generated.',
  EMPTY_CONTENT: 'Message content is empty.',
  MESSAGE_TOO_LONG: 'Message is too long.',
  AI_TIMEOUT: 'The AI provider did not answer in time.',
  AI_ERROR: 'The AI provider failed to answer.',
  MESSAGE_NOT_FOUND: 'No such message to answer or edit in this conversation.',
  QUOTA_EXCEEDED: 'Your daily quota is used up. It resets at midnight UTC.',
  INTERNAL_ERROR: 'Internal error. Please try again.',
} as const;
