/**
 * The o200k tokenizer, in a worker thread of its own (see tokenizer.ts): loading its
 * tables takes ~0.7 s and ~40 MB, which neither start-up nor the event loop pays.
 * Answers `{id, texts}` with `{id, counts}`.
 */
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

declare const self: Worker;

// What users type is text: `<|endoftext|>` in a message is counted as the characters
// it is (the tokenizer would otherwise throw on it, failing the whole message).
const AS_TEXT = { disallowedSpecial: new Set<string>() };

self.onmessage = (event: MessageEvent<{ id: number; texts: string[] }>) => {
  const { id, texts } = event.data;
  self.postMessage({ id, counts: texts.map((text) => countTokens(text, AS_TEXT)) });
};
