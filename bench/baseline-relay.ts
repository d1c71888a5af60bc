/**
 * The baseline: the cheapest WebSocket relay Bun can do — `Bun.serve`, `fetch`, a
 * hand-written SSE line parser, one frame per token as it arrives, no corking, no
 * framework, no database, no auth check (any auth frame succeeds) — fed by the same
 * stub as the server. A ratio is therefore everything the server does on top of
 * relaying: auth, claims, database writes, history, token counting, its provider
 * client (src/ai/openai.ts).
 *
 * RELAY_CLIENT=ours: the same relay reading the stub through the server's own provider
 * client instead (the bench's baseline until issue 23), a second, labelled row for scale.
 * RELAY_CORK=1: the frames of each read written together, as the server writes them.
 */
import type { ModelEvent } from '../src/ai';
import { createOpenAIModel } from '../src/ai/openai';

const baseUrl = process.env.OPENAI_BASE_URL ?? 'http://127.0.0.1:1/v1';
const ourClient = process.env.RELAY_CLIENT === 'ours';
const corked = process.env.RELAY_CORK === '1';
const model = createOpenAIModel({ apiKey: 'baseline', baseUrl, model: 'stub' });

type Sink = { send(data: string): number; cork<T>(callback: () => T): T };

const frame = (content: string) => JSON.stringify({ type: 'chat.stream', content, done: false });

/** fetch and a line parser: each `data:` line's delta becomes a frame at once. */
const relayMinimal = async (ws: Sink, content: string) => {
  const response = await fetch(`${baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer baseline' },
    body: JSON.stringify({ model: 'stub', stream: true, messages: [{ role: 'user', content }] }),
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n');
    while (end !== -1) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      end = buffer.indexOf('\n');
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const text = JSON.parse(line.slice(6)).choices?.[0]?.delta?.content;
      if (text) ws.send(frame(text));
    }
  }
};

const relayBatch = (ws: Sink, batch: ModelEvent[]) => {
  for (const event of batch) if (event.type === 'delta') ws.send(frame(event.text));
};

/** The server's provider client (Bun's fetch and eventsource-parser, batched per read). */
const relayOurClient = async (ws: Sink, content: string) => {
  const turns = [{ role: 'user' as const, content }];
  for await (const batch of model.stream(turns, new AbortController().signal)) {
    if (corked) ws.cork(() => relayBatch(ws, batch));
    else relayBatch(ws, batch);
  }
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
      const incoming = JSON.parse(String(message));
      if (incoming.type === 'auth') {
        ws.send(JSON.stringify({ type: 'auth.success', conversation_id: ws.data.conversationId }));
        return;
      }
      if (incoming.type !== 'chat.message') return;
      const content = String(incoming.content);
      if (ourClient || corked) await relayOurClient(ws, content);
      else await relayMinimal(ws, content);
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
