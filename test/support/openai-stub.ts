/**
 * An OpenAI-compatible streaming server on loopback, so tests and benchmarks drive
 * the real `openai` client. The behaviour of each request is chosen by a marker in
 * the last user message, `[stub:MODE]` or `[stub:MODE:ARG]`:
 *   (none)        the configured tokens, then the final chunk, usage and [DONE]
 *   slow:MS       MS milliseconds before each token
 *   stall         one token, then silence until the client gives up
 *   silent        headers, then silence
 *   status:CODE   an HTTP error with an OpenAI-style body
 *   drop          two tokens, then the connection is cut
 *   garbage       one token, then a line that is not JSON
 *   nofinal       the tokens, then the stream ends with no final chunk or [DONE]
 *   long:N        N tokens
 *   echo          repeats the user's message word by word
 */

export interface StubOptions {
  tokens?: string[];
  tokenDelayMs?: number;
  firstTokenDelayMs?: number;
}

export interface StubRequest {
  model: string;
  messages: { role: string; content: string }[];
  stream: boolean;
  authorization: string | null;
  aborted: boolean;
  finished: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const encoder = new TextEncoder();

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-stub',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'stub',
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;

const usageChunk = (prompt: number, completion: number) =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-stub',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'stub',
    choices: [],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  })}\n\n`;

export const DEFAULT_TOKENS = ['Hello', ',', ' this', ' is', ' the', ' stub', '.'];
export const STUB_PROMPT_TOKENS = 11;

export const startOpenAIStub = (options: StubOptions = {}) => {
  const requests: StubRequest[] = [];
  const tokens = options.tokens ?? DEFAULT_TOKENS;

  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    idleTimeout: 0,
    fetch: async (request) => {
      const url = new URL(request.url);
      if (!url.pathname.endsWith('/chat/completions')) return new Response('not found', { status: 404 });
      const body = (await request.json()) as Omit<StubRequest, 'authorization' | 'aborted' | 'finished'>;
      const record: StubRequest = {
        ...body,
        authorization: request.headers.get('authorization'),
        aborted: false,
        finished: false,
      };
      requests.push(record);
      request.signal.addEventListener('abort', () => {
        record.aborted = true;
      });

      const last = body.messages.findLast((m) => m.role === 'user')?.content ?? '';
      const [, mode = 'normal', arg = ''] = /\[stub:([a-z]+)(?::(\d+))?\]/.exec(last) ?? [];
      if (mode === 'status') {
        const status = Number(arg) || 500;
        return Response.json(
          { error: { message: 'stub error', type: 'server_error', code: null } },
          { status, headers: status === 429 ? { 'retry-after': '0' } : {} },
        );
      }
      const words =
        mode === 'long'
          ? Array.from({ length: Number(arg) || 1000 }, (_, i) => ` w${i}`)
          : mode === 'echo'
            ? last.split(/(?<= )/)
            : tokens;
      const delay = mode === 'slow' ? Number(arg) : (options.tokenDelayMs ?? 0);

      const untilAborted = () =>
        new Promise<void>((resolve) => request.signal.addEventListener('abort', () => resolve()));
      const stream = new ReadableStream({
        pull: async (controller) => {
          const send = (text: string) => controller.enqueue(encoder.encode(text));
          try {
            if (options.firstTokenDelayMs) await sleep(options.firstTokenDelayMs);
            send(chunk({ role: 'assistant', content: '' }));
            if (mode === 'silent') return await untilAborted();
            for (const [i, word] of words.entries()) {
              if (record.aborted) return controller.close();
              if (delay) await sleep(delay);
              send(chunk({ content: word }));
              if (mode === 'stall') return await untilAborted();
              if (mode === 'garbage') {
                send('data: {"choices": [not json\n\n');
                return controller.close();
              }
              if (mode === 'drop' && i === 1) {
                await sleep(20);
                return controller.error(new Error('connection dropped by stub'));
              }
            }
            if (mode !== 'nofinal') {
              send(chunk({}, 'stop'));
              send(usageChunk(STUB_PROMPT_TOKENS, words.length));
              send('data: [DONE]\n\n');
            }
            record.finished = true;
            controller.close();
          } catch {
            // the client went away
          }
        },
      });
      return new Response(stream, {
        headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
      });
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}/v1`,
    requests,
    stop: () => server.stop(true),
  };
};

export type OpenAIStub = ReturnType<typeof startOpenAIStub>;
