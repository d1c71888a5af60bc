/** The part of Bun's ServerWebSocket a connection needs. */
export interface Socket {
  send(data: string): number;
  close(code?: number, reason?: string): void;
  /** Runs `callback`, its sends written together (one system call). */
  cork<R>(callback: () => R): R;
  /**
   * The `INTERNAL_ERROR` sent next is the database or the store not answering. A
   * WebSocket says so with that code alone (SPEC §6.1); an HTTP reader answers 503 (§2).
   */
  outage?(): void;
}

/**
 * A copy that owns its characters. A string cut from a request's URL is a view into
 * the whole URL, which a socket held for hours would keep alive (bench/history.md).
 * (A database reply's strings are already copies: postgres.js decodes a Buffer.)
 */
const detached = (text: string) => Buffer.from(text).toString();

/**
 * Per-socket state (kept in `ws.data`): who is authenticated, when the client was
 * last heard from, and its auth deadline. Replies are not the socket's: they belong
 * to the conversation (reply.ts), and the socket reads them through its room (rooms.ts).
 */
export class ChatConnection {
  // Eight initialised fields keep every socket in JSC's 80-byte object size class
  // (nine to twelve take 112 bytes); the fields only a chatting socket sets are
  // declared without an initialiser below, so an idle socket has no slots for them.
  userId: string | undefined;
  /**
   * The id (`jti`) of the access token the socket authenticated with, so that logging
   * that token out closes it; `''` while its auth is being checked.
   */
  tokenId: string | undefined;
  lastSeen = Date.now();
  authTimer: Timer | undefined;
  /** Unset once the socket has closed. */
  private socket: Socket | undefined;
  /** Neighbours in the connection registry's list (see registry.ts); not set while unregistered. */
  registryPrev: ChatConnection | undefined;
  registryNext: ChatConnection | undefined;

  readonly conversationId: string;

  /** Writers waiting for the socket to drain. */
  declare private drainWaiters: (() => void)[] | undefined;

  constructor(conversationId: string) {
    // Lower-cased: a conversation's room, lock and replies are kept under its id as the
    // database writes it. Path ids already are (canonicalIds, src/lib/input.ts); the AI
    // SDK endpoint's body `id` is not a path id.
    this.conversationId = detached(conversationId.toLowerCase());
  }

  /** Authenticated as `userId` from now on, with the access token `tokenId` when it has one. */
  signIn(userId: string, tokenId?: string) {
    this.clearAuthTimer();
    this.userId = userId;
    this.tokenId = tokenId;
  }

  /** Its auth is being checked: a second `auth` meanwhile is ignored. */
  get authenticating() {
    return this.tokenId === '';
  }

  /** Its auth is being checked from now on. */
  beginAuth() {
    this.tokenId = '';
  }

  /** Its auth was checked: signed in (`signIn` set the token), or refused. */
  endAuth() {
    if (this.tokenId === '') this.tokenId = undefined;
  }

  attach(socket: Socket) {
    this.socket = socket;
  }

  get closed() {
    return this.socket === undefined;
  }

  /** Bun's result: >0 sent, -1 queued under backpressure, 0 dropped or closed. */
  send(frame: string): number {
    return this.socket ? this.socket.send(frame) : 0;
  }

  /**
   * Sends `frames` in order, written together (corked): one system call rather than
   * one per frame, which is most of what relaying a token costs. -1 if any was
   * queued under backpressure, otherwise as `send`.
   */
  sendAll(frames: string[]): number {
    const socket = this.socket;
    if (!socket) return 0;
    if (frames.length === 1) return socket.send(frames[0] as string);
    return socket.cork(() => {
      let backedUp = false;
      let dropped = false;
      for (const frame of frames) {
        const sent = socket.send(frame);
        if (sent === -1) backedUp = true;
        else if (sent === 0) dropped = true;
      }
      return backedUp ? -1 : dropped ? 0 : 1;
    });
  }

  /** Resolves once the socket can take more data (or has closed). */
  drained(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters ??= [];
      this.drainWaiters.push(resolve);
    });
  }

  onDrain() {
    const waiters = this.drainWaiters;
    this.drainWaiters = undefined;
    for (const resolve of waiters ?? []) resolve();
  }

  /** See `Socket.outage`. */
  outage() {
    this.socket?.outage?.();
  }

  disconnect(code: number, reason: string) {
    if (this.closed) return;
    this.socket?.close(code, reason);
    this.onClosed();
  }

  /** Stops the auth deadline and lets the timer go (it would otherwise live as long as the socket). */
  clearAuthTimer() {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }

  /** The socket is gone: stop timers, wake writers. */
  onClosed() {
    this.socket = undefined;
    this.clearAuthTimer();
    this.onDrain();
  }

  get authenticated() {
    return this.userId !== undefined;
  }
}
