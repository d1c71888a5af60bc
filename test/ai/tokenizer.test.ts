import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import type { ChatTurn } from '../../src/ai';
import { countTexts, countTextTokens, fitContext } from '../../src/ai/tokenizer';
import { bundleDir, preparedWorker } from '../../src/ai/tokenizer-bundle';

const AS_TEXT = { disallowedSpecial: new Set<string>() };
/** What the chat format costs: 3 for the reply, 4 around each turn, plus the content. */
const exact = (turns: ChatTurn[]) => turns.reduce((n, t) => n + 4 + countTokens(t.content, AS_TEXT), 3);

const turns = (...contents: string[]): ChatTurn[] =>
  contents.map((content, i) => ({ role: i % 2 ? 'assistant' : 'user', content }));

describe('fitContext', () => {
  test('keeps every turn when they fit, with the exact prompt token count', async () => {
    const history = turns('hello there', 'general kenobi', '数'.repeat(20));
    const context = await fitContext('be brief', history, 1000);
    expect(context.turns).toEqual([{ role: 'system', content: 'be brief' }, ...history]);
    expect(await context.promptTokens()).toBe(exact(context.turns));
  });

  test('keeps every turn whose tokens fit even when their bytes do not', async () => {
    // 400 bytes but 50 tokens each: only the tokenizer can tell they fit.
    const history = turns('a'.repeat(400), 'a'.repeat(400), 'a'.repeat(400));
    expect(exact([{ role: 'system', content: 'sys' }, ...history])).toBeLessThan(200);
    const context = await fitContext('sys', history, 200);
    expect(context.turns).toHaveLength(4);
    expect(await context.promptTokens()).toBe(exact(context.turns));
  });

  test('measures in bytes, not characters: three-byte characters can be three tokens each', async () => {
    const rare = 'ꙮ'.repeat(40); // 40 characters, 120 bytes, 120 tokens
    expect(countTokens(rare)).toBe(120);
    const history = turns('older', rare);
    const context = await fitContext('sys', history, 100);
    expect(context.turns).toEqual([{ role: 'system', content: 'sys' }, history[1] as ChatTurn]);
  });

  test('drops the oldest turns first, down to the budget', async () => {
    const history = turns(...Array.from({ length: 10 }, (_, i) => `turn ${i} ${'word '.repeat(20)}`));
    const context = await fitContext('sys', history, 100);
    expect(context.turns[0]).toEqual({ role: 'system', content: 'sys' });
    expect(context.turns.at(-1)).toEqual(history.at(-1) as ChatTurn);
    expect(context.turns.length).toBeLessThan(history.length);
    expect(context.turns.slice(1)).toEqual(history.slice(-(context.turns.length - 1)));
    expect(await context.promptTokens()).toBeLessThanOrEqual(100);
    // One more turn would not have fitted.
    const oneMore = [context.turns[0] as ChatTurn, ...history.slice(-context.turns.length)];
    expect(exact(oneMore)).toBeGreaterThan(100);
  });

  test('keeps the newest turn even when it alone is over the budget', async () => {
    const history = turns('old', 'older answer', 'word '.repeat(200));
    const context = await fitContext('sys', history, 50);
    expect(context.turns).toEqual([{ role: 'system', content: 'sys' }, history[2] as ChatTurn]);
    expect(await context.promptTokens()).toBeGreaterThan(50);
  });
});

describe('the worker', () => {
  test('a context that fits by its bytes is there at once, without the tokenizer', async () => {
    const history = turns('short', 'answer');
    const context = fitContext('sys', history, 1000);
    expect(context).not.toBeInstanceOf(Promise);
  });

  test('many texts asked at once are counted alike, in order, duplicates included', async () => {
    const texts = ['one', 'two two', '數學', 'one', '', 'x'.repeat(5000)];
    expect(await countTexts(texts)).toEqual(texts.map((text) => countTokens(text, AS_TEXT)));
    const together = await Promise.all(texts.map((text) => countTextTokens(`${text}!`)));
    expect(together).toEqual(texts.map((text) => countTokens(`${text}!`, AS_TEXT)));
  });
});

describe('countTextTokens', () => {
  test('counts special-token text as the characters it is, without throwing', async () => {
    const text = 'what does <|endoftext|> mean, and <|im_start|>?';
    expect(() => countTokens(text)).toThrow(); // the tokenizer's default
    expect(await countTextTokens(text)).toBe(countTokens(text, AS_TEXT));
    expect(await countTextTokens(text)).toBeGreaterThan(10);
  });

  test('agrees with the tokenizer on ordinary text, also when asked again', async () => {
    const text = 'The quick brown fox jumps over the lazy dog. 數學 🙂';
    expect(await countTextTokens(text)).toBe(countTokens(text));
    expect(await countTextTokens(text)).toBe(countTokens(text));
  });
});

describe('the worker prepared by bun install (tokenizer-bundle.ts)', () => {
  test('is there, compiled to bytecode, and counts as the tokenizer does', async () => {
    const prepared = preparedWorker();
    expect(prepared).toEndWith('/worker.js');
    expect(prepared).toContain('/node_modules/.cache/chatbot-api/tokenizer-');
    expect(Bun.file(`${prepared}.jsc`).size).toBeGreaterThan(1_000_000);
    const texts = ['hello there', '数'.repeat(20), 'a <|endoftext|> b', ''];
    const worker = new Worker(prepared as string);
    try {
      const answer = await new Promise<{ id: number; counts: number[] }>((resolve, reject) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = reject;
        worker.postMessage({ id: 7, texts });
      });
      expect(answer).toEqual({ id: 7, counts: texts.map((text) => countTokens(text, AS_TEXT)) });
    } finally {
      worker.terminate();
    }
  });

  test('without its bytecode (no `bun install`, or one that could not build it) it is not used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenizer-'));
    try {
      expect(preparedWorker(dir)).toBeUndefined();
      writeFileSync(join(dir, 'worker.js'), '');
      expect(preparedWorker(dir)).toBeUndefined();
      writeFileSync(join(dir, 'worker.js.jsc'), '');
      expect(preparedWorker(dir)).toBe(join(dir, 'worker.js'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('is named by its inputs: another worker source, tokenizer or Bun never finds it', () => {
    const named = bundleDir('worker', 'package', '1.4.5');
    expect(bundleDir('worker', 'package', '1.4.5')).toBe(named);
    for (const other of [
      bundleDir('worker changed', 'package', '1.4.5'),
      bundleDir('worker', 'package changed', '1.4.5'),
      bundleDir('worker', 'package', '1.4.6'),
    ])
      expect(other).not.toBe(named);
  });
});
