import { describe, expect, test } from 'bun:test';
import type postgres from 'postgres';
import { createBreaker } from '../src/db/breaker';
import { isDatabaseDown } from '../src/lib/failures';
import { rejection, until } from './support/wait';

/** A stand-in for a postgres.js query: a promise with `values()`, settled by the test. */
const query = (settle: (resolve: (rows: unknown[]) => void, reject: (e: unknown) => void) => void) => {
  const promise = new Promise<unknown[]>(settle) as Promise<unknown[]> & { values: () => unknown };
  promise.values = () => promise;
  return () => promise as unknown as postgres.PendingQuery<postgres.Row[]>;
};
const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
const timing = { deadlineMs: 100, probeEveryMs: 20 };

describe('the database breaker', () => {
  test('passes answers and ordinary errors through, and keeps values()', async () => {
    const breaker = createBreaker(async () => {}, timing);
    expect(await breaker.guard(query((resolve) => resolve([{ n: 1 }]))).values()).toEqual([{ n: 1 }]);
    const syntax = Object.assign(new Error('syntax'), { code: '42601' });
    expect(await rejection(Promise.resolve(breaker.guard(query((_, reject) => reject(syntax)))))).toBe(
      syntax,
    );
    expect(breaker.down).toBe(false);
    breaker.stop();
  });

  test('a refused connection opens it: later queries fail at once, until a probe answers', async () => {
    let probeAnswers = false;
    let probes = 0;
    const breaker = createBreaker(async () => {
      probes++;
      if (!probeAnswers) throw refused();
    }, timing);
    expect(
      await rejection(Promise.resolve(breaker.guard(query((_, reject) => reject(refused()))))),
    ).toBeInstanceOf(Error);
    expect(breaker.down).toBe(true);
    let ran = false;
    let refusedAtOnce = false;
    try {
      breaker.guard(() => {
        ran = true;
        throw new Error('must not run');
      });
    } catch (error) {
      // Thrown in the same call: no wait for a deadline (a clock here would flake, not prove more).
      refusedAtOnce = isDatabaseDown(error);
    }
    expect(ran).toBe(false);
    expect(refusedAtOnce).toBe(true);
    await until(() => probes >= 2, 'probed twice');
    expect(breaker.down).toBe(true);
    probeAnswers = true;
    await until(() => !breaker.down, 'closed by a probe that answers');
    expect(await breaker.guard(query((resolve) => resolve([{ n: 2 }])))).toEqual([{ n: 2 }]);
    breaker.stop();
  });

  test('a query that outlives the deadline fails as unavailable and opens it', async () => {
    const breaker = createBreaker(() => new Promise(() => {}), timing);
    const hung = Promise.resolve(breaker.guard(query(() => {})));
    const error = await hung.catch((e) => e);
    expect(isDatabaseDown(error)).toBe(true);
    expect(breaker.down).toBe(true);
    breaker.stop();
  });
});
