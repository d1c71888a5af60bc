import { LRUCache } from 'lru-cache';
import type { ChatTurn } from './model';
import { preparedWorker } from './tokenizer-bundle';

// Per-message framing the chat format adds around each turn (OpenAI cookbook).
const TOKENS_PER_MESSAGE = 4;
const TOKENS_PER_REPLY = 3;

// History is re-counted on every message of a conversation: remember recent counts.
// (A Map evicting its first key degraded once full: JSC's `keys().next()` walks past
// every deleted entry, up to ~40 µs per new text; see bench/history.md.)
const counts = new LRUCache<string, number>({ max: 20_000 });

/**
 * The tokenizer runs in a worker, started when first needed: most conversations fit
 * their budget by a byte count alone (`fitsByBytes`) and never need it, and when one
 * does, loading and counting happen off the event loop (SPEC §15: the tokenizer never
 * blocks start-up or the event loop). A worker that fails fails what it was asked and
 * is started again at the next question.
 */
// In the compiled binary the worker is an entry point embedded beside the server, at
// the path scripts/build.ts defines (it decides the layout); from source, the bundle
// `bun install` compiled to bytecode (tokenizer-bundle.ts), else the file beside this one.
const workerUrl = () =>
  typeof EMBEDDED_TOKENIZER_WORKER === 'string'
    ? EMBEDDED_TOKENIZER_WORKER
    : (preparedWorker() ?? new URL('./tokenizer-worker.ts', import.meta.url).href);

const counter = (() => {
  let worker: Worker | undefined;
  let nextId = 0;
  const waiting = new Map<number, { resolve(counts: number[]): void; reject(error: unknown): void }>();
  const start = () => {
    const started = new Worker(workerUrl());
    started.onmessage = (event: MessageEvent<{ id: number; counts: number[] }>) => {
      waiting.get(event.data.id)?.resolve(event.data.counts);
      waiting.delete(event.data.id);
    };
    started.onerror = (event) => {
      worker = undefined;
      started.terminate();
      for (const { reject } of waiting.values()) reject(new Error(`tokenizer failed: ${event.message}`));
      waiting.clear();
    };
    // Never what keeps the process alive.
    (started as { unref?: () => void }).unref?.();
    return started;
  };
  return (texts: string[]) =>
    new Promise<number[]>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      worker ??= start();
      worker.postMessage({ id, texts });
    });
})();

/** The tokens of each text, from the cache or, for the rest, from the worker in one message. */
export const countTexts = async (texts: string[]) => {
  const missing = [...new Set(texts.filter((text) => !counts.has(text)))];
  if (missing.length) {
    const counted = await counter(missing);
    for (const [i, text] of missing.entries()) counts.set(text, counted[i] as number);
  }
  return texts.map((text) => counts.get(text) ?? 0);
};

export const countTextTokens = async (text: string) => (await countTexts([text]))[0] as number;

/**
 * Whether the chat-format cost of `system` and `history` is surely within `budget`
 * without tokenizing: every token of a byte-level BPE (o200k_base) stands for one
 * UTF-8 byte or more, so the byte count bounds the token count. The lengths are
 * tried first (a UTF-16 unit is at most three bytes); failing that, the bytes are
 * counted, newest turns first, stopping as soon as the bound is over, and a text
 * whose length alone is over (a UTF-16 unit is at least one byte) is not even
 * measured: at most about `budget` bytes are looked at, however long the history.
 */
const fitsByBytes = (system: string, history: ChatTurn[], budget: number) => {
  // Most conversations are short enough that three times their length fits.
  let bound = TOKENS_PER_REPLY + TOKENS_PER_MESSAGE + 3 * system.length;
  for (let i = 0; i < history.length && bound <= budget; i++)
    bound += TOKENS_PER_MESSAGE + 3 * (history[i] as ChatTurn).content.length;
  if (bound <= budget) return true;
  let left = budget - TOKENS_PER_REPLY;
  /** Takes one turn's bound off what is left; false once that is over. */
  const spend = (text: string) => {
    left -= TOKENS_PER_MESSAGE;
    if (text.length > left) return false;
    left -= Buffer.byteLength(text, 'utf8');
    return left >= 0;
  };
  if (!spend(system)) return false;
  for (let i = history.length - 1; i >= 0; i--) if (!spend((history[i] as ChatTurn).content)) return false;
  return true;
};

const exactPromptTokens = async (turns: ChatTurn[]) =>
  (await countTexts(turns.map((turn) => turn.content))).reduce(
    (n, tokens) => n + TOKENS_PER_MESSAGE + tokens,
    TOKENS_PER_REPLY,
  );

export interface FittedContext {
  /** What the model is sent: the system prompt (if any) and the kept turns. */
  turns: ChatTurn[];
  /** The kept turns, without the system prompt. */
  history: ChatTurn[];
  /** The prompt's exact token count, for providers that do not report usage. */
  promptTokens(): Promise<number>;
}

const fitted = (system: string, kept: ChatTurn[]): FittedContext => {
  // An empty system prompt is none at all (a conversation's "" setting, SPEC §12).
  const turns: ChatTurn[] = system ? [{ role: 'system', content: system }, ...kept] : [...kept];
  return { turns, history: [...kept], promptTokens: () => exactPromptTokens(turns) };
};

/**
 * The system prompt plus as many of the newest turns as fit in `maxTokens`,
 * dropping the oldest first. The newest turn (the question) is always kept.
 *
 * When even the UTF-8 byte count of everything fits, so do its tokens: nothing is
 * tokenized and the answer is there at once (not a promise), so a conversation
 * shorter than the budget (most of them) costs no tokenizer work and no wait. Longer
 * ones are counted by the worker.
 */
export const fitContext = (
  system: string,
  history: ChatTurn[],
  maxTokens: number,
): FittedContext | Promise<FittedContext> =>
  fitsByBytes(system, history, maxTokens)
    ? fitted(system, history)
    : trim(system, history, maxTokens).then((kept) => fitted(system, kept));

const trim = async (system: string, history: ChatTurn[], maxTokens: number): Promise<ChatTurn[]> => {
  const [systemTokens = 0, ...tokens] = await countTexts([system, ...history.map((turn) => turn.content)]);
  let used = TOKENS_PER_REPLY + TOKENS_PER_MESSAGE + systemTokens;
  let start = history.length;
  for (let i = history.length - 1; i >= 0; i--) {
    const cost = TOKENS_PER_MESSAGE + (tokens[i] as number);
    if (used + cost > maxTokens && i < history.length - 1) break;
    used += cost;
    start = i;
  }
  return history.slice(start);
};
