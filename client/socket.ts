import type { ClientFrame, ServerFrame } from '../src/modules/chat/protocol';

export type { ClientFrame, ServerFrame };

/** Where the socket is: connecting (or authenticating), open, waiting to reconnect, or done. */
export type ChatSocketStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The reply streaming in the conversation, as this socket has seen it so far. */
export interface LiveReply {
  messageId: string;
  parentId: string;
  text: string;
}

type FrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;

export interface ChatSocketOptions {
  /** The server's WebSocket base, e.g. `ws://localhost:8000` (or `wss://…`). */
  url: string;
  conversationId: string;
  /**
   * The access token for the in-band auth, asked for at every (re)connection; `renew`
   * is true after the server refused the last one (refresh it then).
   */
  token: (renew: boolean) => Promise<string | undefined> | string | undefined;
  /** Delay before the n-th reconnection attempt; default 0.5 s doubling up to 10 s. */
  backoffMs?: (attempt: number) => number;
  /** A WebSocket implementation (the global one by default). */
  WebSocket?: typeof WebSocket;
}

const AUTH_FAILED = 4001;
const NO_CONVERSATION = 4004;

/** The errors that end a reply (the others refuse a frame and leave it streaming). */
const REPLY_ENDING = new Set(['AI_TIMEOUT', 'AI_ERROR', 'INTERNAL_ERROR', 'NO_CONVERSATION']);

const defaultBackoff = (attempt: number) => Math.min(10_000, 500 * 2 ** attempt);

/**
 * One conversation's WebSocket (SPEC §6, §11, §12): authenticates in-band, answers
 * the heartbeat, and reconnects after a dropped connection — where the server resumes
 * the reply streaming meanwhile (`chat.resume`). `reply` is the reply streaming now,
 * kept across reconnections. Listen with `on(type, …)` for frames and `onStatus(…)`.
 */
export class ChatSocket {
  status: ChatSocketStatus = 'connecting';
  /** The reply streaming now, or undefined. */
  reply: LiveReply | undefined;
  private socket: WebSocket | undefined;
  private attempt = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private renewToken = false;
  private readonly frameListeners = new Map<string, Set<(frame: never) => void>>();
  private readonly statusListeners = new Set<(status: ChatSocketStatus, reason?: string) => void>();
  private readonly Socket: typeof WebSocket;

  constructor(private readonly options: ChatSocketOptions) {
    this.Socket = options.WebSocket ?? WebSocket;
    void this.connect();
  }

  /** Calls `listener` with every frame of `type`; returns the unsubscribe. */
  on<T extends ServerFrame['type']>(type: T, listener: (frame: FrameOf<T>) => void): () => void {
    let listeners = this.frameListeners.get(type);
    if (!listeners) {
      listeners = new Set();
      this.frameListeners.set(type, listeners);
    }
    const entry = listener as (frame: never) => void;
    listeners.add(entry);
    return () => listeners.delete(entry);
  }

  /** Calls `listener` at every status change (`reason`: why it closed for good). */
  onStatus(listener: (status: ChatSocketStatus, reason?: string) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Sends a message; its answer streams to every socket of the conversation. */
  message(content: string) {
    return this.send({ type: 'chat.message', content });
  }

  /** Answers a question again: the answer `messageId`, or the current branch's last one. */
  regenerate(messageId?: string) {
    return this.send(
      messageId ? { type: 'chat.regenerate', message_id: messageId } : { type: 'chat.regenerate' },
    );
  }

  /** A new version of user message `messageId`, answered on a new branch. */
  edit(messageId: string, content: string) {
    return this.send({ type: 'chat.edit', message_id: messageId, content });
  }

  /** Stops the reply streaming in the conversation, wherever it runs. */
  stop() {
    return this.send({ type: 'chat.stop' });
  }

  /** Closes for good: no reconnection. */
  close() {
    this.stopped = true;
    clearTimeout(this.retry);
    this.socket?.close(1000);
    this.setStatus('closed');
  }

  /** False when not connected (nothing was sent). */
  send(frame: ClientFrame): boolean {
    if (this.status !== 'open' || !this.socket) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  private async connect() {
    if (this.stopped) return;
    this.setStatus(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const token = await this.options.token(this.renewToken);
    if (this.stopped) return;
    if (!token) return this.finish('AUTH_FAILED');
    const { url, conversationId } = this.options;
    const socket = new this.Socket(
      `${url.replace(/\/$/, '')}/ws/chat/${encodeURIComponent(conversationId)}/`,
    );
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: 'auth', token }));
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') this.receive(JSON.parse(event.data) as ServerFrame);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (this.stopped) return;
      if (event.code === NO_CONVERSATION) return this.finish('NO_CONVERSATION');
      // A refused token is renewed once; refused again, the socket gives up.
      if (event.code === AUTH_FAILED) {
        if (this.renewToken) return this.finish('AUTH_FAILED');
        this.renewToken = true;
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect() {
    this.setStatus('reconnecting');
    const delay = (this.options.backoffMs ?? defaultBackoff)(this.attempt);
    this.attempt += 1;
    this.retry = setTimeout(() => void this.connect(), delay);
  }

  private finish(reason: string) {
    this.stopped = true;
    this.reply = undefined;
    this.setStatus('closed', reason);
  }

  private receive(frame: ServerFrame) {
    switch (frame.type) {
      case 'auth.success':
        this.attempt = 0;
        this.renewToken = false;
        // A reply seen before the drop and over since: its end was missed.
        this.reply = undefined;
        this.setStatus('open');
        break;
      case 'ping':
        this.socket?.send('{"type":"pong"}');
        break;
      case 'chat.start':
        this.reply = { messageId: frame.message_id, parentId: frame.parent_id, text: '' };
        break;
      case 'chat.resume':
        this.reply = { messageId: frame.message_id, parentId: frame.parent_id, text: frame.content };
        break;
      case 'chat.stream':
        if (!frame.done) {
          if (this.reply) this.reply.text += frame.content;
        } else this.reply = undefined;
        break;
      case 'chat.error':
        if (REPLY_ENDING.has(frame.code)) this.reply = undefined;
        break;
      default:
        break;
    }
    for (const listener of this.frameListeners.get(frame.type) ?? [])
      (listener as (frame: ServerFrame) => void)(frame);
  }

  private setStatus(status: ChatSocketStatus, reason?: string) {
    if (this.status === status && !reason) return;
    this.status = status;
    for (const listener of this.statusListeners) listener(status, reason);
  }
}
