import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ModelError, type ModelEvent } from '../../src/ai/model';
import { createOpenAIModel } from '../../src/ai/openai';
import {
  DEFAULT_TOKENS,
  type OpenAIStub,
  STUB_PROMPT_TOKENS,
  startOpenAIStub,
  UNSTORABLE_ANSWER,
} from '../support/openai-stub';

/** The provider client on its own, against the loopback stub (the chat tests cover it end to end). */
let stub: OpenAIStub;
beforeAll(async () => {
  stub = startOpenAIStub();
  await stub.ready;
});
afterAll(() => stub.stop());

const model = (baseUrl = stub.url) => createOpenAIModel({ apiKey: 'sk-unit', baseUrl, model: 'unit-model' });

/**
 * Every event until the stream ends (and the batches they came in), or the error it
 * ended with; `onText` sees the answer so far after each batch.
 */
const drain = async (
  content: string,
  signal = new AbortController().signal,
  baseUrl?: string,
  onText: (text: string) => void = () => {},
) => {
  const batches: ModelEvent[][] = [];
  const events: ModelEvent[] = [];
  try {
    for await (const batch of model(baseUrl).stream([{ role: 'user', content }], signal)) {
      batches.push(batch);
      events.push(...batch);
      onText(deltas(events));
    }
    return { events, batches, text: deltas(events), error: undefined };
  } catch (error) {
    return { events, batches, text: deltas(events), error: error as Error };
  }
};
const deltas = (events: ModelEvent[]) => events.flatMap((e) => (e.type === 'delta' ? [e.text] : [])).join('');

describe('OpenAI-compatible provider client', () => {
  test('yields the events of one read together, and those of separate reads apart', async () => {
    const burst = await drain('[stub:burst]');
    expect(burst.error).toBeUndefined();
    expect(burst.batches).toEqual([
      [
        ...DEFAULT_TOKENS.map((text) => ({ type: 'delta' as const, text })),
        { type: 'usage', promptTokens: STUB_PROMPT_TOKENS, completionTokens: DEFAULT_TOKENS.length },
      ],
    ]);
    const paced = await drain('[stub:slow:50]');
    // 50 ms apart, the deltas come in reads of their own (the usage follows the last at once).
    // Under a loaded machine (the suite runs in parallel) two may still share a read.
    const deltas = paced.batches.map((batch) => batch.filter((e) => e.type === 'delta'));
    expect(deltas.flat()).toEqual(DEFAULT_TOKENS.map((text) => ({ type: 'delta', text })));
    expect(deltas.length).toBeGreaterThanOrEqual(DEFAULT_TOKENS.length - 2);
  });

  test('a failure in the middle of a read comes after the deltas read before it', async () => {
    const { batches, error } = await drain('[stub:burstgarbage]');
    expect(batches).toEqual([DEFAULT_TOKENS.map((text) => ({ type: 'delta', text }))]);
    expect(error).toBeInstanceOf(ModelError);
    expect(error?.message).toBe('The AI provider sent a broken response.');
  });

  test('POSTs one streaming chat completion and yields each delta, then the usage', async () => {
    const { events, error } = await drain('hello');
    expect(error).toBeUndefined();
    expect(events).toEqual([
      ...DEFAULT_TOKENS.map((text) => ({ type: 'delta' as const, text })),
      { type: 'usage', promptTokens: STUB_PROMPT_TOKENS, completionTokens: DEFAULT_TOKENS.length },
    ]);
    const request = stub.requests.at(-1);
    expect(request).toMatchObject({
      model: 'unit-model',
      messages: [{ role: 'user', content: 'hello' }],
      stream: true,
      stream_options: { include_usage: true },
      authorization: 'Bearer sk-unit',
      finished: true,
      aborted: false,
    });
  });

  test('text the database cannot store is mended: NUL goes, a lone surrogate becomes U+FFFD, a split pair stays whole', async () => {
    const { events, text, error } = await drain('[stub:unstorable]');
    expect(error).toBeUndefined();
    expect(text).toBe(UNSTORABLE_ANSWER);
    // No delta is left empty or holds half a pair.
    for (const event of events)
      if (event.type === 'delta') {
        expect(event.text).not.toBe('');
        expect(event.text.isWellFormed()).toBe(true);
      }
  });

  test('joins the base URL and the path whatever its trailing slash, keeping its query', async () => {
    expect((await drain('slash', undefined, `${stub.url}/`)).error).toBeUndefined();
    expect((await drain('query', undefined, `${stub.url}?api-version=7`)).error).toBeUndefined();
    expect(stub.requests.at(-1)?.query).toBe('api-version=7');
  });

  test.each([
    [500, 'The AI provider answered with an error (HTTP 500).'],
    [503, 'The AI provider answered with an error (HTTP 503).'],
    [429, 'The AI provider is rate limiting requests. Try again shortly.'],
    [401, 'The AI provider refused our credentials.'],
  ])('HTTP %i fails with a message safe to show', async (status, message) => {
    const { events, error } = await drain(`[stub:status:${status}]`);
    expect(events).toEqual([]);
    expect(error).toBeInstanceOf(ModelError);
    expect(error?.message).toBe(message);
  });

  test('an unreachable provider fails as such', async () => {
    const { error } = await drain('anyone?', undefined, 'http://127.0.0.1:1/v1');
    expect(error).toBeInstanceOf(ModelError);
    expect(error?.message).toBe('The AI provider could not be reached.');
  });

  test.each([
    ['an error field in a chunk', '[stub:error]', 'Hello', 'reported an error'],
    ['an SSE event named error', '[stub:errorevent]', 'Hello', 'reported an error'],
    ['a chunk that is not JSON', '[stub:garbage]', 'Hello', 'broken response'],
    ['a chunk that is JSON but not an object', '[stub:null]', 'Hello', 'broken response'],
    ['a connection cut mid-answer', '[stub:drop]', 'Hello,', 'broke off the answer'],
    ['no final chunk', '[stub:nofinal]', DEFAULT_TOKENS.join(''), 'ended the answer early'],
    ['an event longer than 4 MiB', '[stub:huge]', 'Hello', 'broken response'],
  ])('%s fails after the deltas that came before it', async (_, marker, before, message) => {
    // `drop` waits for the test to cut it, once its tokens have come through.
    const { text, error } = await drain(marker, undefined, undefined, (sofar) => {
      if (sofar === before) stub.cut();
    });
    expect(text).toBe(before);
    expect(error).toBeInstanceOf(ModelError);
    expect(error?.message).toContain(message);
  });

  test('the huge event is refused without waiting for its end, and the request is dropped', async () => {
    await drain('[stub:huge]');
    await Bun.sleep(50);
    expect(stub.requests.at(-1)?.aborted).toBe(true);
  });

  test('an abort ends the stream quietly and drops the request', async () => {
    const controller = new AbortController();
    const events: ModelEvent[] = [];
    for await (const batch of model().stream(
      [{ role: 'user', content: '[stub:slow:30]' }],
      controller.signal,
    )) {
      events.push(...batch);
      if (events.length === 2) controller.abort();
    }
    expect(deltas(events)).toBe('Hello,');
    await Bun.sleep(50);
    expect(stub.requests.at(-1)).toMatchObject({ aborted: true, finished: false });
  });

  test('a caller that stops iterating drops the request', async () => {
    for await (const batch of model().stream(
      [{ role: 'user', content: '[stub:slow:30]' }],
      new AbortController().signal,
    )) {
      expect(batch).toEqual([{ type: 'delta', text: 'Hello' }]);
      break;
    }
    await Bun.sleep(50);
    expect(stub.requests.at(-1)).toMatchObject({ aborted: true, finished: false });
  });
});
