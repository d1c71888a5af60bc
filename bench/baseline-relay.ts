/**
 * The baseline: a bare Bun.serve WebSocket relay (no framework, no database, no
 * auth check: any auth frame succeeds) streaming from the same stub through the
 * openai package with Bun's own fetch, sending the same frames as the server.
 */
import OpenAI from 'openai';

const client = new OpenAI({ apiKey: 'baseline', baseURL: process.env.OPENAI_BASE_URL, maxRetries: 0 });

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
      const stream = await client.chat.completions.create({
        model: 'stub',
        messages: [{ role: 'user', content: frame.content }],
        stream: true,
        stream_options: { include_usage: true },
      });
      for await (const chunk of stream) {
        const text = chunk.choices?.[0]?.delta?.content;
        if (text) ws.send(JSON.stringify({ type: 'chat.stream', content: text, done: false }));
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
