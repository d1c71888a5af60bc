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

export const countTextTokens = (text: string) => {
  let n = counts.get(text);
  if (n === undefined) {
    n = countTokens(text);
    counts.set(text, n);
  }
  return n;
};

/**
 * The system prompt plus as many of the newest turns as fit in `maxTokens`,
 * dropping the oldest first. The newest turn (the question) is always kept.
 */
export const fitContext = (system: string, history: ChatTurn[], maxTokens: number) => {
  let used = TOKENS_PER_REPLY + TOKENS_PER_MESSAGE + countTextTokens(system);
  let start = history.length;
  for (let i = history.length - 1; i >= 0; i--) {
    const turn = history[i] as ChatTurn;
    const cost = TOKENS_PER_MESSAGE + countTextTokens(turn.content);
    if (used + cost > maxTokens && i < history.length - 1) break;
    used += cost;
    start = i;
  }
  return {
    turns: [{ role: 'system', content: system }, ...history.slice(start)] as ChatTurn[],
    promptTokens: used,
  };
};
