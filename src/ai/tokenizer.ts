import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { LRUCache } from 'lru-cache';
import type { ChatTurn } from './model';

// Per-message framing the chat format adds around each turn (OpenAI cookbook).
const TOKENS_PER_MESSAGE = 4;
const TOKENS_PER_REPLY = 3;

// History is re-counted on every message of a conversation: remember recent counts.
// (A Map evicting its first key degraded once full: JSC's `keys().next()` walks past
// every deleted entry, up to ~40 µs per new text; see bench/history.md.)
const counts = new LRUCache<string, number>({ max: 20_000 });

// What users type is text: `<|endoftext|>` in a message is counted as the characters
// it is (the tokenizer would otherwise throw on it, failing the whole message).
const AS_TEXT = { disallowedSpecial: new Set<string>() };

export const countTextTokens = (text: string) => {
  let n = counts.get(text);
  if (n === undefined) {
    n = countTokens(text, AS_TEXT);
    counts.set(text, n);
  }
  return n;
};

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

const exactPromptTokens = (turns: ChatTurn[]) =>
  turns.reduce((n, turn) => n + TOKENS_PER_MESSAGE + countTextTokens(turn.content), TOKENS_PER_REPLY);

/**
 * The system prompt plus as many of the newest turns as fit in `maxTokens`,
 * dropping the oldest first. The newest turn (the question) is always kept.
 *
 * When even the UTF-8 byte count of everything fits, so do its tokens, and nothing
 * is tokenized: a conversation shorter than the budget (most of them) costs no
 * tokenizer work per message. `promptTokens` counts on demand, for providers that do
 * not report usage.
 */
export const fitContext = (system: string, history: ChatTurn[], maxTokens: number) => {
  const kept = fitsByBytes(system, history, maxTokens) ? history : trim(system, history, maxTokens);
  // An empty system prompt is none at all (a conversation's "" setting, SPEC §12).
  const turns: ChatTurn[] = system ? [{ role: 'system', content: system }, ...kept] : [...kept];
  return { turns, history: [...kept], promptTokens: () => exactPromptTokens(turns) };
};

const trim = (system: string, history: ChatTurn[], maxTokens: number): ChatTurn[] => {
  let used = TOKENS_PER_REPLY + TOKENS_PER_MESSAGE + countTextTokens(system);
  let start = history.length;
  for (let i = history.length - 1; i >= 0; i--) {
    const turn = history[i] as ChatTurn;
    const cost = TOKENS_PER_MESSAGE + countTextTokens(turn.content);
    if (used + cost > maxTokens && i < history.length - 1) break;
    used += cost;
    start = i;
  }
  return history.slice(start);
};
