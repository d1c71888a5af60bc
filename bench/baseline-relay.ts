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
 * RELAY_DATABASE_URL (with REDIS_URL): the minimal relay doing what SPEC §11 asks of a
 * reply before its first delta, at its cheapest (Bun's own SQL and Redis clients, one
 * statement and one command per message, no batching): the provider request leaves
 * at once while the conversation is locked in Redis (SET NX) and the user message is
 * then inserted into PostgreSQL; message.created and chat.start go out once it is
 * stored, and the deltas that arrived meanwhile with them. The answer is inserted and
 * the lock deleted before the done frame. A second, labelled row for scale: what
 * storing costs a first token on this machine, apart from everything else the server does.
 */
import { RedisClient, SQL } from 'bun';
import type { ModelEvent } from '../src/ai';
import { createOpenAIModel } from '../src/ai/openai';

const baseUrl = process.env.OPENAI_BASE_URL ?? 'http://127.0.0.1:1/v1';
const ourClient = process.env.RELAY_CLIENT === 'ours';
const corked = process.env.RELAY_CORK === '1';
const model = createOpenAIModel({ apiKey: 'baseline', baseUrl, model: 'stub' });

type Sink = { send(data: string): number; cork<T>(callback: () => T): T };

const storing = process.env.RELAY_DATABASE_URL
  ? {
      sql: new SQL(process.env.RELAY_DATABASE_URL, { max: 20 }),
      redis: new RedisClient(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'),
    }
  : undefined;
if (storing)
  await storing.sql`create table if not exists relay_messages (
    id uuid primary key, conversation_id uuid not null, role text not null, content text not null,
    created_at timestamptz not null default now())`;

/**
 * The storing relay's reply (see above): `relay` runs at once into a sink that holds
 * its frames until the user message is stored.
 */
const relayStoring = async (
  store: NonNullable<typeof storing>,
  ws: Sink,
  conversationId: string,
  content: string,
  relay: (sink: Sink, onText: (text: string) => void) => Promise<void>,
) => {
  const held: string[] = [];
  let open = false;
  let answer = '';
  const sink: Sink = {
    send: (data) => {
      if (open) return ws.send(data);
      held.push(data);
      return 1;
    },
    cork: (callback) => ws.cork(callback),
  };
  const lock = `relay:lock:${conversationId}`;
  const stored = (async () => {
    // Each bench conversation has one reply at a time: a refusal (lock held) never happens here.
    await store.redis.send('SET', [lock, 'relay', 'NX', 'PX', '60000']);
    const userId = crypto.randomUUID();
    const [row] = await store.sql`insert into relay_messages (id, conversation_id, role, content)
      values (${userId}, ${conversationId}, 'user', ${content}) returning id, created_at`;
    ws.send(
      JSON.stringify({
        type: 'message.created',
        message: { id: row.id, content, created_at: row.created_at },
      }),
    );
    ws.send(JSON.stringify({ type: 'chat.start', message_id: crypto.randomUUID(), parent_id: userId }));
    for (const data of held) ws.send(data);
    open = true;
  })();
  await relay(sink, (text) => {
    answer += text;
  });
  await stored;
  await store.sql`insert into relay_messages (id, conversation_id, role, content)
    values (${crypto.randomUUID()}, ${conversationId}, 'assistant', ${answer})`;
  await store.redis.send('DEL', [lock]);
};

const frame = (content: string) => JSON.stringify({ type: 'chat.stream', content, done: false });

/** fetch and a line parser: each `data:` line's delta becomes a frame at once. */
const relayMinimal = async (ws: Sink, content: string, onText?: (text: string) => void) => {
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
      if (!text) continue;
      onText?.(text);
      ws.send(frame(text));
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
      if (storing)
        await relayStoring(storing, ws, ws.data.conversationId, content, (sink, onText) =>
          relayMinimal(sink, content, onText),
        );
      else if (ourClient || corked) await relayOurClient(ws, content);
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
