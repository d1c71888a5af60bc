import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An OpenAI-compatible streaming server on loopback, so the tests drive the server's
 * real provider client (src/ai/openai.ts) over HTTP. The behaviour of each request is
 * chosen by a marker in the model's name or else the last user message, `[stub:MODE]`
 * or `[stub:MODE:ARG]`:
 *   (none)        the configured tokens, then the final chunk, usage and [DONE]
 *   slow:MS       MS milliseconds before each token
 *   stall         one token, then silence until the client gives up
 *   silent        headers, then silence
 *   status:CODE   an HTTP error with an OpenAI-style body
 *   drop          two tokens, then the connection is cut when the test calls `cut()`
 *   garbage       one token, then a line that is not JSON
 *   null          one token, then a chunk that is JSON but not an object
 *   error         one token, then a chunk carrying an `error` field
 *   errorevent    one token, then an SSE event named `error`
 *   huge          one token, then a 5 MB line that never ends
 *   nofinal       the tokens, then the stream ends with no final chunk or [DONE]
 *   nousage       the tokens and the final chunk, but no usage chunk
 *   burst         the whole answer in one write
 *   burstgarbage  the tokens and a line that is not JSON, in one write
 *   long:N        N tokens
 *   drip:MS       40 tokens, MS milliseconds apart
 *   echo          repeats the user's message word by word
 *   unstorable    UNSTORABLE_TOKENS: NUL, lone surrogates, an emoji's pair split across two chunks
 */

export interface StubOptions {
  tokens?: string[];
  tokenDelayMs?: number;
  firstTokenDelayMs?: number;
}

interface StubRequest {
  model: string;
  messages: { role: string; content: string }[];
  stream: boolean;
  stream_options?: { include_usage?: boolean };
  /** The request's query string, if any. */
  query: string;
  authorization: string | null;
  aborted: boolean;
  finished: boolean;
  /** Content chunks written so far (the stream is pull-based, so this shows backpressure). */
  sent: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

/**
 * What no database can store as it is: NUL, lone surrogates, and an emoji whose
 * surrogate pair is split across two chunks (`[stub:unstorable]`). The answer the
 * server should store and send: `UNSTORABLE_ANSWER`.
 */
const UNSTORABLE_TOKENS = ['Hel', 'lo\u0000 x', ' \uD83D', '\uDE00 ok', ' \uDC00z', ' end\uD83D'];
export const UNSTORABLE_ANSWER = 'Hello x 😀 ok \uFFFDz end\uFFFD';

/** A message the stub answers slowly (`[stub:drip:MS]`): 40 tokens, `ms` apart. */
export const drip = (words: string, ms = 25) => `${words} [stub:drip:${ms}]`;
/** What a drip answers. */
export const DRIP_ANSWER = Array.from({ length: 40 }, (_, i) => ` w${i}`).join('');

export const startOpenAIStub = (options: StubOptions = {}) => {
  const requests: StubRequest[] = [];
  const tokens = options.tokens ?? DEFAULT_TOKENS;
  /**
   * Streams of `drop` waiting to be cut. The test cuts them once it has seen their
   * tokens arrive: cut on a timer, a loaded machine could deliver the tokens and the
   * cut in one read, and Bun's fetch then rejects the whole response (its headers
   * and tokens unread), which is another case than the one the test is about.
   */
  const dropping: (() => void)[] = [];

  // node:http rather than Bun.serve: its writes report TCP backpressure, so `sent`
  // shows how far the server under test has actually read.
  const server = http.createServer(async (req, res) => {
    const [path = '', query = ''] = (req.url ?? '').split('?');
    if (!path.endsWith('/chat/completions')) {
      res.writeHead(404).end('not found');
      return;
    }
    let raw = '';
    for await (const part of req) raw += part;
    const body = JSON.parse(raw) as Omit<
      StubRequest,
      'query' | 'authorization' | 'aborted' | 'finished' | 'sent'
    >;
    const record: StubRequest = {
      ...body,
      query,
      authorization: req.headers.authorization ?? null,
      aborted: false,
      finished: false,
      sent: 0,
    };
    requests.push(record);
    res.on('close', () => {
      if (!res.writableFinished) record.aborted = true;
    });

    const last = body.messages.findLast((m) => m.role === 'user')?.content ?? '';
    // A marker in the model's name wins: a title request (AI_TITLE_MODEL) can fail alone.
    const marker = /\[stub:([a-z]+)(?::(\d+))?\]/;
    const [, mode = 'normal', arg = ''] = marker.exec(body.model) ?? marker.exec(last) ?? [];
    if (mode === 'status') {
      const status = Number(arg) || 500;
      res.writeHead(status, {
        'content-type': 'application/json',
        ...(status === 429 ? { 'retry-after': '0' } : {}),
      });
      res.end(JSON.stringify({ error: { message: 'stub error', type: 'server_error', code: null } }));
      return;
    }
    const words =
      mode === 'long' || mode === 'drip'
        ? Array.from({ length: mode === 'drip' ? 40 : Number(arg) || 1000 }, (_, i) => ` w${i}`)
        : mode === 'echo'
          ? last.split(/(?<= )/)
          : mode === 'unstorable'
            ? UNSTORABLE_TOKENS
            : tokens;
    const delay = mode === 'slow' || mode === 'drip' ? Number(arg) : (options.tokenDelayMs ?? 0);

    const send = async (text: string) => {
      if (res.write(text)) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done).off('close', done);
          resolve();
        };
        res.on('drain', done).on('close', done);
      });
    };
    const untilClosed = () => new Promise((resolve) => res.once('close', resolve));

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (mode === 'burst' || mode === 'burstgarbage') {
      const parts = [
        chunk({ role: 'assistant', content: '' }),
        ...words.map((word) => chunk({ content: word })),
      ];
      if (mode === 'burst')
        parts.push(chunk({}, 'stop'), usageChunk(STUB_PROMPT_TOKENS, words.length), 'data: [DONE]\n\n');
      else parts.push('data: {"choices": [not json\n\n');
      record.sent = words.length;
      record.finished = mode === 'burst';
      return res.end(parts.join(''));
    }
    if (options.firstTokenDelayMs) await sleep(options.firstTokenDelayMs);
    await send(chunk({ role: 'assistant', content: '' }));
    if (mode === 'silent') return untilClosed();
    for (const [i, word] of words.entries()) {
      if (record.aborted) return;
      if (delay) await sleep(delay);
      // A remote provider cannot hold up the server's event loop; this stub shares it,
      // and writes that keep being buffered never leave the microtask queue (a long
      // answer filled 28,000 chunks, 120 ms and more on a loaded machine, before its
      // first was read). So it lets the loop turn now and then.
      else if (i % 64 === 63) await new Promise(setImmediate);
      await send(chunk({ content: word }));
      record.sent++;
      if (mode === 'stall') return untilClosed();
      if (mode === 'garbage') return res.end('data: {"choices": [not json\n\n');
      if (mode === 'null') return res.end('data: null\n\n');
      if (mode === 'error') return res.end('data: {"error": {"message": "overloaded"}}\n\n');
      if (mode === 'errorevent') return res.end('event: error\ndata: {"message": "overloaded"}\n\n');
      if (mode === 'huge') {
        await send(`data: ${'x'.repeat(5 * 1024 * 1024)}`);
        return untilClosed();
      }
      if (mode === 'drop' && i === 1) {
        await new Promise<void>((cut) => dropping.push(cut));
        return res.destroy();
      }
    }
    if (mode !== 'nofinal') {
      await send(chunk({}, 'stop'));
      if (mode !== 'nousage') await send(usageChunk(STUB_PROMPT_TOKENS, words.length));
      await send('data: [DONE]\n\n');
    }
    record.finished = true;
    res.end();
  });
  server.listen(0, '127.0.0.1');
  const port = () => (server.address() as AddressInfo).port;

  return {
    ready: once(server, 'listening'),
    get url() {
      return `http://127.0.0.1:${port()}/v1`;
    },
    requests,
    /** Cuts the connection of every `drop` stream that has sent its two tokens. */
    cut: () => {
      for (const cut of dropping.splice(0)) cut();
    },
    /** The requests whose last message is `content`. */
    requestsFor: (content: string) => requests.filter((r) => r.messages.at(-1)?.content === content),
    stop: () => {
      server.closeAllConnections();
      server.close();
    },
  };
};

export type OpenAIStub = ReturnType<typeof startOpenAIStub>;
