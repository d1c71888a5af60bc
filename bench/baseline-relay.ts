/**
 * The baseline: a bare Bun.serve WebSocket relay (no framework, no database, no
 * auth check: any auth frame succeeds) streaming from the same stub through the
 * server's own provider client (src/ai/openai.ts: Bun's fetch and eventsource-parser),
 * sending the same frames as the server. Sharing the client means a ratio is what
 * the full job (auth, claims, database writes, history, token counting) costs on
 * top of relaying; `bun run bench client` compares the client with the openai package.
 * Like any minimal relay it writes each frame as it goes, one system call per frame.
 */
import type { ModelEvent } from '../src/ai';
import { createOpenAIModel } from '../src/ai/openai';

const model = createOpenAIModel({ apiKey: 'baseline', baseUrl: process.env.OPENAI_BASE_URL, model: 'stub' });
// RELAY_CORK=1: the frames of each read written together, as the server writes them
// (only for scale: the baseline proper is the minimal relay, one write per frame).
const corked = process.env.RELAY_CORK === '1';

const relay = (ws: { send(data: string): number }, batch: ModelEvent[]) => {
  for (const event of batch)
    if (event.type === 'delta')
      ws.send(JSON.stringify({ type: 'chat.stream', content: event.text, done: false }));
};

Bun.serve<{ conversationId: string }>({
  port: Number(process.env.PORT ?? 0),
  hostname: '0.0.0.0',
  // Several relays may share the port, as the server's processes do (Elysia turns this on).
  reusePort: true,
  fetch: (request, server) => {
    const conversationId = new URL(request.url).pathname.split('/')[3] ?? '';
    if (server.upgrade(request, { data: { conversationId } })) return;
    return new Response('baseline relay');
  },
  websocket: {
    idleTimeout: 0,
    message: async (ws, message) => {
      const frame = JSON.parse(String(message));
      if (frame.type === 'auth') {
        ws.send(JSON.stringify({ type: 'auth.success', conversation_id: ws.data.conversationId }));
        return;
      }
      if (frame.type !== 'chat.message') return;
      const turns = [{ role: 'user' as const, content: String(frame.content) }];
      for await (const batch of model.stream(turns, new AbortController().signal)) {
        if (corked) ws.cork(() => relay(ws, batch));
        else relay(ws, batch);
      }
      ws.send(
        JSON.stringify({ type: 'chat.stream', content: '', done: true, message_id: crypto.randomUUID() }),
      );
    },
  },
});
console.log('ready');
// Exit cleanly on SIGTERM so `--cpu-prof` (BENCH_PROFILE_DIR) can write its profile;
// SIGUSR2 runs a full garbage collection (the idle scenario reads settled memory).
process.on('SIGTERM', () => process.exit(0));
process.on('SIGUSR2', () => Bun.gc(true));
