import { describe, expect, test } from 'bun:test';
import { retryAfterSeconds, waitInWords } from '../../src/lib/errors';

describe('a wait, as Retry-After counts it and as a refusal says it', () => {
  test.each([
    [1, '1 s'],
    [89, '89 s'],
    [90, '2 min'],
    [3599, '60 min'],
    [5340, '89 min'],
    [5400, '1 h 30 min'],
    [7200, '2 h'],
    [12_000, '3 h 20 min'],
    [86_400, '24 h'],
  ])('%d s reads "%s"', (seconds, words) => {
    expect(waitInWords(seconds)).toBe(words);
  });

  test('Retry-After is whole seconds, rounded up, never 0', () => {
    expect([0, 1, 999, 1000, 1001, -5].map(retryAfterSeconds)).toEqual([1, 1, 1, 1, 2, 1]);
  });
});
