/** Load generation with real WebSocket clients. */

/** The password of every account the bench makes. */
export const BENCH_PASSWORD = 'Bench-password-123!';

export interface Session {
  token: string;
  conversationIds: string[];
}

const json = (url: string, body: unknown, token?: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  }).then((r) => r.json() as Promise<Record<string, string>>);

/** `users` accounts with `perUser` conversations each, logged in (Argon2 is paid here, before measuring). */
export const prepareSessions = async (
  baseUrl: string,
  users: number,
  perUser: number,
): Promise<(Session & { username: string })[]> =>
  Promise.all(
    Array.from({ length: users }, async (_, i) => {
      const username = `bench${Date.now().toString(36)}u${i}${Math.random().toString(36).slice(2, 6)}`;
      const password = BENCH_PASSWORD;
      await json(`${baseUrl}/api/auth/register`, { username, email: `${username}@example.com`, password });
      const { access } = await json(`${baseUrl}/api/token/pair`, { username, password });
      const conversationIds: string[] = [];
      for (let c = 0; c < perUser; c++)
        conversationIds.push((await json(`${baseUrl}/api/conversations/`, {}, access)).id as string);
      return { username, token: access as string, conversationIds };
    }),
  );

/** A socket authenticated on a conversation, with timing of each reply. */
export const openChat = (wsBase: string, conversationId: string, token: string) =>
  new Promise<{
    ask: (
      content: string,
    ) => Promise<{ ttftMs: number; totalMs: number; tokens: number; text: string; messageId?: string }>;
    askAndStop: (content: string) => Promise<{ stopMs: number; status: string }>;
    close: () => void;
  }>((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}/ws/chat/${conversationId}/`);
    let onFrame: (frame: Record<string, unknown>) => void = () => {};
    ws.onmessage = (event) => {
      const frame = JSON.parse(String(event.data));
      if (frame.type === 'ping') return ws.send('{"type":"pong"}');
      onFrame(frame);
    };
    ws.onerror = () => reject(new Error('websocket error'));
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    onFrame = (frame) => {
      if (frame.type !== 'auth.success') return reject(new Error(`auth failed: ${JSON.stringify(frame)}`));
      resolve({
        ask: (content) =>
          new Promise((done, fail) => {
            const started = performance.now();
            let first = 0;
            let tokens = 0;
            let text = '';
            onFrame = (f) => {
              if (f.type === 'chat.error') return fail(new Error(String(f.code)));
              if (f.type !== 'chat.stream') return;
              if (!f.done) {
                if (!first) first = performance.now();
                tokens++;
                text += f.content as string;
                return;
              }
              const now = performance.now();
              done({
                ttftMs: first - started,
                totalMs: now - started,
                tokens,
                text,
                messageId: f.message_id as string,
              });
            };
            ws.send(JSON.stringify({ type: 'chat.message', content }));
          }),
        /** Asks, sends `chat.stop` at the first delta, and times stop → the done frame. */
        askAndStop: (content) =>
          new Promise((done, fail) => {
            let stoppedAt = 0;
            onFrame = (f) => {
              if (f.type === 'chat.error') return fail(new Error(String(f.code)));
              if (f.type !== 'chat.stream') return;
              if (!f.done) {
                if (stoppedAt) return;
                stoppedAt = performance.now();
                return ws.send('{"type":"chat.stop"}');
              }
              done({ stopMs: performance.now() - stoppedAt, status: String(f.status ?? 'complete') });
            };
            ws.send(JSON.stringify({ type: 'chat.message', content }));
          }),
        close: () => ws.close(),
      });
    };
  });
