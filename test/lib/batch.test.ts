import { describe, expect, test } from 'bun:test';
import { batchedPerTurn } from '../../src/lib/batch';

/** A batched doubler that records the items of every call of `run`. */
const doubler = () => {
  const calls: number[][] = [];
  const double = batchedPerTurn(
    async (items: number[]) => {
      calls.push(items);
      return items.map((n) => n * 2);
    },
    () => false,
  );
  return { calls, double };
};

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('batchedPerTurn', () => {
  test('calls of one turn share one run and get their own answers, in call order', async () => {
    const { calls, double } = doubler();
    expect(await Promise.all([double(1), double(2), double(3)])).toEqual([2, 4, 6]);
    expect(calls).toEqual([[1, 2, 3]]);
  });

  test('calls of a later turn make a run of their own; a lone call waits only for the end of its turn', async () => {
    const { calls, double } = doubler();
    const first = [double(1), double(2)];
    await nextTurn();
    let answered = false;
    const lone = double(3).then((n) => {
      answered = true;
      return n;
    });
    expect(await Promise.all(first)).toEqual([2, 4]);
    await nextTurn();
    await Bun.sleep(0);
    expect(answered).toBe(true);
    expect(await lone).toBe(6);
    expect(calls).toEqual([[1, 2], [3]]);
  });

  test('a failed run fails every caller, or retries each item alone when one may be to blame', async () => {
    const everyone = batchedPerTurn(
      async (_items: number[]): Promise<number[]> => {
        throw new Error('service gone');
      },
      () => false,
    );
    const results = await Promise.allSettled([everyone(1), everyone(2)]);
    expect(results.map((r) => (r as PromiseRejectedResult).reason?.message)).toEqual([
      'service gone',
      'service gone',
    ]);

    const runs: number[][] = [];
    const blamed = batchedPerTurn(
      async (items: number[]) => {
        runs.push(items);
        if (items.includes(13)) throw new Error(`bad item among ${items.join(',')}`);
        return items;
      },
      () => true,
    );
    const each = await Promise.allSettled([blamed(1), blamed(13), blamed(3)]);
    expect(each.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((each[1] as PromiseRejectedResult).reason.message).toBe('bad item among 13');
    expect(runs).toEqual([[1, 13, 3], [1], [13], [3]]);
  });
});
