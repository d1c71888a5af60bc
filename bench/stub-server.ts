/**
 * The benchmarks' OpenAI-compatible streaming stub, as its own process so its work is
 * not counted as the server's: STUB_TOKENS tokens per answer, STUB_DELAY_MS before
 * each token, STUB_FIRST_DELAY_MS before the first. Prints its base URL on the first
 * line. Lean on purpose (Bun.serve, chunks encoded once): it stands for a remote
 * provider, so a burst of 200 requests should cost it little.
 */
const count = Number(process.env.STUB_TOKENS ?? 200);
const delayMs = Number(process.env.STUB_DELAY_MS ?? 0);
const firstDelayMs = Number(process.env.STUB_FIRST_DELAY_MS ?? 0);
/** Set: only requests whose body holds this text are paced (STUB_DELAY_MS); the rest stream at once. */
const pacedMark = process.env.STUB_PACED_MARK;

const encoder = new TextEncoder();
const event = (payload: object) => encoder.encode(`data: ${JSON.stringify(payload)}\n\n`);
const chunk = (delta: object, finish: string | null = null, usage?: object) =>
  event({
    id: 'chatcmpl-stub',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'stub',
    choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }],
    ...(usage ? { usage } : {}),
  });
const opening = chunk({ role: 'assistant', content: '' });
const tokens = Array.from({ length: count }, (_, i) => chunk({ content: ` tok${i}` }));
const ending = (n: number) => [
  chunk({}, n < count ? 'length' : 'stop'),
  chunk({}, null, { prompt_tokens: 11, completion_tokens: n, total_tokens: 11 + n }),
  encoder.encode('data: [DONE]\n\n'),
];
const closing = ending(count);

/** Like a real provider, it stops at the request's `max_tokens` (the server's titles ask for 24). */
const limitOf = (body: string) => {
  try {
    const { max_tokens, max_completion_tokens } = JSON.parse(body);
    const limit = Number(max_completion_tokens ?? max_tokens);
    return Number.isInteger(limit) && limit > 0 && limit < count ? limit : count;
  } catch {
    return count;
  }
};

const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  idleTimeout: 0,
  fetch: async (request) => {
    if (!new URL(request.url).pathname.endsWith('/chat/completions'))
      return new Response('not found', { status: 404 });
    const text = await request.text();
    const n = limitOf(text);
    const pace = !pacedMark || text.includes(pacedMark) ? delayMs : 0;
    const sent = n === count ? tokens : tokens.slice(0, n);
    const last = n === count ? closing : ending(n);
    const { signal } = request;
    const body = new ReadableStream({
      type: 'direct',
      async pull(controller) {
        if (firstDelayMs) await Bun.sleep(firstDelayMs);
        controller.write(opening);
        controller.flush();
        for (const token of sent) {
          if (pace) await Bun.sleep(pace);
          if (signal.aborted) return controller.close();
          controller.write(token);
          await controller.flush();
        }
        for (const part of last) controller.write(part);
        await controller.flush();
        controller.close();
      },
    });
    return new Response(body, {
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
    });
  },
});
console.log(`http://127.0.0.1:${server.port}/v1`);
