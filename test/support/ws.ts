/** A WebSocket test client that queues frames so tests can await them in order. */

// biome-ignore lint/suspicious/noExplicitAny: frames are checked by the tests themselves
type Frame = Record<string, any>;

export interface WsClient {
  socket: WebSocket;
  frames: Frame[];
  send(frame: unknown): void;
  sendRaw(data: string | ArrayBufferLike | Uint8Array): void;
  /** The next frame (matching `predicate`, skipping others), or a timeout error. */
  next(predicate?: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /**
   * Frames up to and including the `done` frame or an error frame (pings and
   * conversation.updated are skipped); `created` and
   * `start` are the reply's message.created and chat.start frames, when they came.
   */
  reply(timeoutMs?: number): Promise<{ deltas: string[]; final: Frame; created?: Frame; start?: Frame }>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export const connect = (url: string, options: { headers?: Record<string, string> } = {}): Promise<WsClient> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: options.headers } as unknown as string[]);
    const frames: Frame[] = [];
    const waiters: (() => void)[] = [];
    let cursor = 0;
    let closeInfo: { code: number; reason: string } | undefined;
    const closed = new Promise<{ code: number; reason: string }>((done) => {
      socket.addEventListener('close', (event) => {
        closeInfo = { code: event.code, reason: event.reason };
        done(closeInfo);
        for (const wake of waiters.splice(0)) wake();
      });
    });
    socket.addEventListener('message', (event) => {
      frames.push(JSON.parse(String(event.data)));
      for (const wake of waiters.splice(0)) wake();
    });
    socket.addEventListener('error', () => reject(new Error('websocket error')));

    const next = async (predicate: (frame: Frame) => boolean = () => true, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        while (cursor < frames.length) {
          const frame = frames[cursor++] as Frame;
          if (predicate(frame)) return frame;
        }
        if (closeInfo) throw new Error(`socket closed (${closeInfo.code}) while waiting for a frame`);
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new Error(`no frame within ${timeoutMs} ms; got ${JSON.stringify(frames)}`);
        await new Promise<void>((wake) => {
          const timer = setTimeout(wake, remaining);
          waiters.push(() => {
            clearTimeout(timer);
            wake();
          });
        });
      }
    };

    socket.addEventListener('open', () =>
      resolve({
        socket,
        frames,
        send: (frame) => socket.send(JSON.stringify(frame)),
        sendRaw: (data) => socket.send(data),
        next,
        reply: async (timeoutMs = 10_000) => {
          const deltas: string[] = [];
          let created: Frame | undefined;
          let start: Frame | undefined;
          while (true) {
            // conversation.updated is about the conversation, not a reply (SPEC §12).
            const frame = await next(
              (f) => f.type !== 'ping' && f.type !== 'conversation.updated',
              timeoutMs,
            );
            if (frame.type === 'message.created') created = frame;
            else if (frame.type === 'chat.start') start = frame;
            else if (frame.type === 'chat.stream' && !frame.done) deltas.push(frame.content);
            else return { deltas, final: frame, created, start };
          }
        },
        closed,
        close: () => socket.close(),
      }),
    );
  });

/** Connects to a conversation and authenticates; fails the test if auth does not succeed. */
export const connectAuthenticated = async (wsUrl: string, conversationId: string, token: string) => {
  const client = await connect(`${wsUrl}/ws/chat/${conversationId}/`);
  client.send({ type: 'auth', token });
  const frame = await client.next();
  if (frame.type !== 'auth.success') throw new Error(`auth failed: ${JSON.stringify(frame)}`);
  return client;
};

/** The chat.error codes that end a reply (SPEC §11); the others refuse a frame. */
const REPLY_ENDS = new Set(['AI_TIMEOUT', 'AI_ERROR', 'INTERNAL_ERROR']);

/**
 * A socket's replies as SPEC §11 orders their frames, each from its chat.start (or its
 * chat.resume, with the text so far) to its end, with the text the socket was shown and
 * how it ended (`complete`, `interrupted`, or an error code); whatever breaks that
 * order: a delta or an end outside a reply, a start before the last reply's end; and
 * whether a reply is still streaming to it.
 */
export const repliesSeen = (frames: Frame[]) => {
  const problems: string[] = [];
  const replies: { id: string; text: string; end: string; stored: boolean }[] = [];
  let current: { id: string; text: string } | undefined;
  for (const [i, f] of frames.entries()) {
    if (f.type === 'chat.start' || f.type === 'chat.resume') {
      if (current) problems.push(`${i}: ${f.type} while ${current.id} streams`);
      current = { id: f.message_id, text: f.type === 'chat.resume' ? f.content : '' };
    } else if (f.type === 'chat.stream' && !f.done) {
      if (current) current.text += f.content;
      else problems.push(`${i}: a delta outside a reply`);
    } else if (f.type === 'chat.stream') {
      if (!current) problems.push(`${i}: an end outside a reply`);
      else if (f.message_id !== null && f.message_id !== current.id)
        problems.push(`${i}: the end of ${f.message_id} during ${current.id}`);
      else replies.push({ ...current, end: f.status ?? 'complete', stored: f.message_id !== null });
      current = undefined;
    } else if (f.type === 'chat.error' && REPLY_ENDS.has(f.code) && current) {
      replies.push({ ...current, end: f.code, stored: false });
      current = undefined;
    }
  }
  return { problems, replies, streaming: current !== undefined };
};
