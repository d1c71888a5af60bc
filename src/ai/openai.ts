import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsStreaming,
} from 'openai/resources/chat/completions';
import { type ChatModel, type ChatTurn, ModelError, type ModelEvent, type StreamOptions } from './model';

export interface OpenAISettings {
  apiKey: string;
  baseUrl?: string;
  model: string;
}

// A chat chunk is a few hundred characters; an event this long is not a chat stream.
const MAX_EVENT_CHARS = 4 * 1024 * 1024;

const UNREACHABLE = 'The AI provider could not be reached.';
const BROKEN = 'The AI provider sent a broken response.';

const describeStatus = (status: number): string => {
  if (status === 429) return 'The AI provider is rate limiting requests. Try again shortly.';
  if (status === 401) return 'The AI provider refused our credentials.';
  return `The AI provider answered with an error (HTTP ${status}).`;
};

/** `{base}/chat/completions`, keeping any query the base URL carries. */
const completionsUrl = (baseUrl = 'https://api.openai.com/v1') => {
  const url = new URL(baseUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/chat/completions`;
  return url.toString();
};

const DONE = Symbol('done');

// NUL, which PostgreSQL cannot store in text, and any UTF-16 surrogate (rare: emoji and the like).
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what is looked for
const UNSTORABLE = /[\u0000\uD800-\uDFFF]/;

/**
 * The answer's text as it can be stored and read back the same: NUL removed, a lone
 * surrogate replaced by U+FFFD (what the database would make of it). A high surrogate
 * that ends one delta is held for the next, so a pair a provider split across two
 * chunks stays one character. Text without either passes untouched.
 */
const storableDeltas = () => {
  let held = '';
  return {
    mend: (text: string) => {
      if (!held && !UNSTORABLE.test(text)) return text;
      let whole = held + text.replaceAll('\u0000', '');
      held = '';
      const last = whole.charCodeAt(whole.length - 1);
      if (last >= 0xd800 && last <= 0xdbff) {
        held = whole.slice(-1);
        whole = whole.slice(0, -1);
      }
      return whole.toWellFormed();
    },
    /** What is still held when the answer ends: a surrogate that never got its pair. */
    rest: () => (held ? '\uFFFD' : ''),
  };
};

/** One server-sent event of the answer: its chunk, or DONE for `[DONE]`. */
const parseChunk = (message: EventSourceMessage): ChatCompletionChunk | typeof DONE => {
  if (message.data === '[DONE]') return DONE;
  let chunk: (ChatCompletionChunk & { error?: unknown }) | null;
  try {
    chunk = JSON.parse(message.data);
  } catch (error) {
    throw new ModelError(BROKEN, error);
  }
  if (typeof chunk !== 'object' || chunk === null) throw new ModelError(BROKEN);
  if (message.event === 'error' || chunk.error)
    throw new ModelError('The AI provider reported an error in the middle of the answer.');
  return chunk;
};

/**
 * Any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, LM Studio, gateways): one
 * POST to `/chat/completions` through Bun's fetch, its server-sent events read with
 * `eventsource-parser`. The request and chunk shapes are the `openai` package's types.
 *
 * Not through the `openai` client itself, which costs ~50 µs of JavaScript per
 * request and, when 200 requests start together, takes them through its awaits side
 * by side, so even the first one leaves only after all are nearly built; its stream
 * iterator (five nested async generators and a copy of every chunk) costs about three
 * times the CPU of this reader. `bun run bench client` measures both. The semantics
 * are the client's: an HTTP error status fails the request, `[DONE]` ends the answer,
 * an `error` event or field fails it, an unreadable chunk is a broken response, and
 * an answer that stops before its final chunk ended early.
 *
 * No retries: a failure is reported to the user at once, and the silence timeout is
 * enforced by the caller, which knows about backpressure. Bun's fetch pauses the
 * provider's socket once ~256 KiB of the body waits unread (Bun ≥ 1.4.5), so a reply
 * we stop reading stops coming (SPEC §10); the backpressure test in
 * test/modules/chat/gate.test.ts holds it to that.
 */
export const createOpenAIModel = (settings: OpenAISettings): ChatModel => {
  const url = completionsUrl(settings.baseUrl);
  const headers = {
    'content-type': 'application/json',
    accept: 'text/event-stream',
    authorization: `Bearer ${settings.apiKey}`,
  };

  const request = async (turns: ChatTurn[], signal: AbortSignal, options: StreamOptions) => {
    const body: ChatCompletionCreateParamsStreaming = {
      model: options.model ?? settings.model,
      messages: turns,
      stream: true,
      stream_options: { include_usage: true },
      ...(options.maxTokens ? { max_tokens: options.maxTokens } : {}),
    };
    let response: Response;
    try {
      response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal });
    } catch (error) {
      throw new ModelError(UNREACHABLE, error);
    }
    if (!response.ok) {
      response.body?.cancel().catch(() => {});
      throw new ModelError(describeStatus(response.status));
    }
    if (!response.body) throw new ModelError(BROKEN);
    return response.body.getReader();
  };

  return {
    mode: 'configured',
    async *stream(
      turns: ChatTurn[],
      signal: AbortSignal,
      options: StreamOptions = {},
    ): AsyncIterable<ModelEvent[]> {
      let reader: Awaited<ReturnType<typeof request>> | undefined;
      let ended = false;
      let finished = false;
      try {
        reader = await request(turns, signal, options);
        const decoder = new TextDecoder();
        const received: EventSourceMessage[] = [];
        const deltas = storableDeltas();
        let overflow = false;
        const parser = createParser({
          maxBufferSize: MAX_EVENT_CHARS,
          onEvent: (message) => received.push(message),
          onError: (error) => {
            if (error.type === 'max-buffer-size-exceeded') overflow = true;
          },
        });
        for (;;) {
          const bytes = await reader.read().catch((error: unknown) => {
            throw new ModelError('The AI provider broke off the answer.', error);
          });
          if (bytes.done) {
            ended = true;
            break;
          }
          parser.feed(decoder.decode(bytes.value, { stream: true }));
          if (overflow) throw new ModelError(BROKEN);
          // The events of one read go out together; a failure after some of them
          // comes after those.
          const batch: ModelEvent[] = [];
          let failure: unknown;
          let complete = false;
          for (const message of received) {
            let chunk: ReturnType<typeof parseChunk>;
            try {
              chunk = parseChunk(message);
            } catch (error) {
              failure = error;
              break;
            }
            if (chunk === DONE) {
              complete = true;
              break;
            }
            const choice = chunk.choices?.[0];
            const text = choice?.delta?.content && deltas.mend(choice.delta.content);
            if (text) batch.push({ type: 'delta', text });
            if (choice?.finish_reason) finished = true;
            if (chunk.usage)
              batch.push({
                type: 'usage',
                promptTokens: chunk.usage.prompt_tokens ?? 0,
                completionTokens: chunk.usage.completion_tokens ?? 0,
              });
          }
          received.length = 0;
          if (batch.length) yield batch;
          if (failure) throw failure;
          if (complete) break;
        }
        const rest = deltas.rest();
        if (rest) yield [{ type: 'delta', text: rest }];
      } catch (error) {
        if (signal.aborted) return;
        throw error;
      } finally {
        // Stopped before the end of the body (done, aborted, failed, or the caller
        // stopped iterating): let the connection go.
        if (reader && !ended) reader.cancel().catch(() => {});
      }
      if (!finished && !signal.aborted) throw new ModelError('The AI provider ended the answer early.');
    },
  };
};
