import { describe, expect, test } from 'bun:test';
import { Glob } from 'bun';

const root = new URL('..', import.meta.url).pathname;

/**
 * How the suite itself is written. A test that awaits `expect(promise).resolves` (or
 * `.rejects`) has bun:test wait for that promise in a nested event-loop tick. In the
 * browser tests on PostgreSQL, a `setImmediate` that postgres.js queued meanwhile to
 * send a query (in this same process: the server under test) was now and then never
 * run: the query sat unsent, PostgreSQL waited in ClientRead, and the request answered
 * 503 after the 1.5 s deadline (about one run in six; none in 26 once the waits were
 * plain `await`s). Tests await the promise and then expect, or use `rejection()`
 * (test/support/wait.ts).
 */
describe('the suite', () => {
  test('no test waits through expect(…).resolves or expect(…).rejects', async () => {
    const nested = /\)\s*\.(resolves|rejects)\./;
    const offenders: string[] = [];
    for await (const file of new Glob('test/**/*.ts').scan(root)) {
      const lines = (await Bun.file(`${root}/${file}`).text()).split('\n');
      lines.forEach((line, i) => {
        if (nested.test(line)) offenders.push(`${file}:${i + 1}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
