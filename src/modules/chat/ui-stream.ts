import { type Static, t } from 'elysia';
import { SERVICE_UNAVAILABLE } from '../../lib/errors';
import { CLOSE, type ErrorCode, MESSAGES, type ServerFrame } from './protocol';
import { ChatConnection, type Socket } from './socket';

/**
 * The Vercel AI SDK's chat request (`useChat`, `DefaultChatTransport`): SPEC §14. Only
 * the last user message's text is read; the rest of the client's copy is not trusted.
 */
export const UiChatBody = t.Object({
  id: t.String({ description: 'One of your conversation ids' }),
  messages: t.Array(
    t.Object({
      role: t.String(),
      parts: t.Array(t.Object({ type: t.String(), text: t.Optional(t.String()) })),
    }),
  ),
  trigger: t.Optional(
    t.Union([t.Literal('submit-message'), t.Literal('regenerate-message')], {
      error: 'Must be "submit-message" or "regenerate-message".',
    }),
  ),
  messageId: t.Optional(t.String()),
});
export type UiChatBody = Static<typeof UiChatBody>;

/** The text of the last user message of an AI SDK request, or undefined when it has none. */
export const lastUserText = (messages: UiChatBody['messages']) => {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message?.role !== 'user') continue;
    return message.parts.map((part) => (part.type === 'text' ? (part.text ?? '') : '')).join('');
  }
  return undefined;
};

const UI_STREAM_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-vercel-ai-ui-message-stream': 'v1',
  'x-accel-buffering': 'no',
};

const validation = (msg: string, type: string) =>
  Response.json(
    { detail: [{ loc: ['body', 'messages'], msg, type }] },
    { status: 422, headers: { 'content-type': 'application/json' } },
  );

const problem = (status: number, detail: string, code?: string, retryAfter?: number) =>
  Response.json(code ? { detail, code } : { detail }, {
    status,
    headers: retryAfter === undefined ? undefined : { 'retry-after': String(retryAfter) },
  });

/** A refusal before the answer, as a plain HTTP error (SPEC §2, §14); 429s say when to retry. */
const refusalResponse = (code: string, message: string, retryAfter?: number): Response => {
  switch (code as ErrorCode) {
    case 'RATE_LIMIT_EXCEEDED':
      return problem(429, message, 'rate_limit_exceeded', retryAfter);
    case 'QUOTA_EXCEEDED':
      return problem(429, message, 'quota_exceeded', retryAfter);
    case 'ALREADY_PROCESSING':
      return problem(409, message, 'already_processing');
    case 'EMPTY_CONTENT':
      return validation(message, 'empty_content');
    case 'MESSAGE_TOO_LONG':
      return validation(message, 'message_too_long');
    case 'MESSAGE_NOT_FOUND':
      return problem(404, message, 'message_not_found');
    case 'NO_CONVERSATION':
      return problem(404, MESSAGES.NO_CONVERSATION);
    case 'AI_TIMEOUT':
      return problem(504, message, 'ai_timeout');
    case 'AI_ERROR':
      return problem(502, message, 'ai_error');
    default:
      return problem(500, 'Internal server error');
  }
};

/** The answers of the AI SDK routes, for the OpenAPI document (the handlers return Responses of their own). */
const UI_STREAM_RESPONSE = {
  description:
    'The UI message stream (v1), header `x-vercel-ai-ui-message-stream: v1`: start, text-start, text-delta…, text-end, finish, then `data: [DONE]`; a failure mid-answer is an `error` part',
  content: { 'text/event-stream': { schema: { type: 'string' as const } } },
};
const refusal = (description: string) => ({
  description,
  content: {
    'application/json': {
      schema: {
        type: 'object' as const,
        required: ['detail'],
        properties: { detail: {}, code: { type: 'string' as const } },
      },
    },
  },
});

/** `POST /api/chat`: the stream, or a refusal before it. */
export const UI_CHAT_ANSWERS = {
  200: UI_STREAM_RESPONSE,
  404: refusal('Not your conversation, or (regenerate) no such answer: `message_not_found`'),
  409: refusal('A reply is streaming in this conversation: `already_processing`'),
  422: refusal('Empty or too long a message, or no user message'),
  429: {
    ...refusal('Rate limit (`rate_limit_exceeded`) or daily quota (`quota_exceeded`)'),
    headers: {
      'Retry-After': {
        description: 'Seconds until a message would be accepted',
        schema: { type: 'integer' as const, minimum: 1 },
      },
    },
  },
};

/** `GET /api/chat/{id}/stream`: the stream, or 204. */
export const UI_RESUME_ANSWERS = {
  200: UI_STREAM_RESPONSE,
  204: { description: 'No reply is streaming' },
  404: refusal('Not your conversation'),
};

const encoder = new TextEncoder();
const part = (value: object) => encoder.encode(`data: ${JSON.stringify(value)}\n\n`);
const DONE = encoder.encode('data: [DONE]\n\n');

/**
 * One HTTP reader of a conversation's reply, in the AI SDK's UI message stream
 * protocol (v1): to the rooms it is one more socket of the conversation, so storage,
 * limits, lock, quota, fan-out and stop are the WebSocket's own. Our frames become
 * the protocol's parts here; until the answer starts, a `chat.error` becomes the
 * HTTP error `response` resolves to.
 */
export class UiStreamSocket implements Socket {
  /** The HTTP answer: the stream once the answer starts, or an error before it. */
  readonly response: Promise<Response>;
  readonly connection: ChatConnection;
  private answer!: (response: Response) => void;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** The text part's id once the answer started. */
  private textId: string | undefined;
  private finished = false;
  /** The INTERNAL_ERROR to come is an outage: 503, not 500. */
  private unavailable = false;

  constructor(
    conversationId: string,
    userId: string,
    /** Called once when the stream ends or its reader goes: the connection leaves its room. */
    private readonly onGone: (connection: ChatConnection) => void,
  ) {
    this.response = new Promise((resolve) => {
      this.answer = resolve;
    });
    this.connection = new ChatConnection(conversationId);
    this.connection.attach(this);
    this.connection.signIn(userId);
  }

  /** Nothing streams: 204, as the SDK's reconnect expects (SPEC §14). */
  nothing() {
    this.answer(new Response(null, { status: 204 }));
    this.end();
  }

  send(data: string): number {
    if (this.finished) return 0;
    const frame = JSON.parse(data) as ServerFrame;
    switch (frame.type) {
      case 'chat.start':
        return this.open(frame.message_id, '');
      case 'chat.resume':
        return this.open(frame.message_id, frame.content);
      case 'chat.stream':
        if (this.textId === undefined) return 1;
        if (!frame.done)
          return this.write(part({ type: 'text-delta', id: this.textId, delta: frame.content }));
        this.write(part({ type: 'text-end', id: this.textId }));
        this.write(
          part({
            type: 'finish',
            messageMetadata: { status: frame.status === 'interrupted' ? 'interrupted' : 'complete' },
          }),
        );
        this.close();
        return 1;
      case 'chat.error':
        if (this.textId === undefined) {
          this.answer(
            this.unavailable && frame.code === 'INTERNAL_ERROR'
              ? problem(503, SERVICE_UNAVAILABLE)
              : refusalResponse(frame.code, frame.error, frame.retry_after),
          );
          this.end();
          return 1;
        }
        this.write(part({ type: 'error', errorText: frame.error }));
        this.close();
        return 1;
      default:
        // auth.success, message.created, conversation.updated, ping: not part of the protocol.
        return 1;
    }
  }

  cork<R>(callback: () => R): R {
    return callback();
  }

  outage() {
    this.unavailable = true;
  }

  /**
   * The reply ended (or the connection is closed): `[DONE]`, then the stream closes. A
   * reader that fell behind while others read on (rooms.ts, 1013) is told so in an error
   * part, with where to resume: the answer goes on without it.
   */
  close(code?: number) {
    if (this.finished) return;
    if (this.controller) {
      if (code === CLOSE.tryAgainLater && this.textId !== undefined)
        this.controller.enqueue(
          part({
            type: 'error',
            errorText: `This stream fell behind the answer and was closed; GET /api/chat/${this.connection.conversationId}/stream resumes it.`,
          }),
        );
      this.controller.enqueue(DONE);
      this.controller.close();
    } else this.answer(refusalResponse('INTERNAL_ERROR', MESSAGES.INTERNAL_ERROR));
    this.end();
  }

  private open(messageId: string, text: string) {
    if (this.textId !== undefined) return 1;
    this.textId = messageId;
    const socket = this;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        socket.controller = controller;
        controller.enqueue(part({ type: 'start', messageId }));
        controller.enqueue(part({ type: 'text-start', id: messageId }));
        if (text) controller.enqueue(part({ type: 'text-delta', id: messageId, delta: text }));
      },
      pull() {
        socket.connection.onDrain();
      },
      cancel() {
        // The reader went away (tab closed, network gone): the reply goes on (SPEC §11).
        socket.end();
      },
    });
    this.answer(new Response(stream, { headers: UI_STREAM_HEADERS }));
    return 1;
  }

  /** -1 once the reader is behind, so the reply waits for `pull` (its drain). */
  private write(bytes: Uint8Array) {
    const controller = this.controller;
    if (!controller) return 0;
    controller.enqueue(bytes);
    return (controller.desiredSize ?? 1) > 0 ? 1 : -1;
  }

  private end() {
    if (this.finished) return;
    this.finished = true;
    this.connection.onClosed();
    this.onGone(this.connection);
  }
}
