/**
 * `bun run bench stop`: SPEC §11 says a stop ends a reply within one second: the answer
 * so far stored `interrupted`, its token counts included, and the stopped done frame
 * sent. A reply the provider stopped reports no usage, so those counts come from the
 * tokenizer, whose first load takes most of a second. This measures that worst case:
 * in a freshly started server, a reply stopped as soon as its first delta arrives (stop
 * sent → stopped done frame), then a later reply on the same process stopped the same
 * way. Fresh processes each time (`BENCH_REPEAT`, default 5); the stub paces tokens
 * 20 ms apart. No baseline: the relay has no stop. Both backends.
 */
import { openChat, prepareSessions } from './lib/load';
import { freePort } from './lib/ports';
import { percentile } from './lib/proc';
import { spawnServer, spawnStub } from './lib/processes';
import type { Row } from './scenarios';

const STUB = { STUB_TOKENS: '200', STUB_DELAY_MS: '20' };

const once = async () => {
  const stub = await spawnStub(STUB);
  const server = await spawnServer(stub.url, freePort());
  try {
    const [session] = await prepareSessions(server.url, 1, 2);
    if (!session) throw new Error('no session');
    const wsBase = server.url.replace('http', 'ws');
    const stopped = async (conversationId: string) => {
      const chat = await openChat(wsBase, conversationId, session.token);
      const { stopMs, status } = await chat.askAndStop('stop me after the first delta');
      chat.close();
      if (status !== 'interrupted') throw new Error(`the reply ended ${status}, not interrupted`);
      return stopMs;
    };
    const [firstId, laterId] = session.conversationIds as [string, string];
    return { first: await stopped(firstId), later: await stopped(laterId) };
  } finally {
    await server.stop();
    await stub.stop();
  }
};

export const stop = async (): Promise<Row[]> => {
  const times = Number(process.env.BENCH_REPEAT ?? 5);
  const runs = [];
  for (let i = 0; i < times; i++) runs.push(await once());
  const first = runs.map((r) => r.first);
  const later = percentile(
    runs.map((r) => r.later),
    50,
  );
  const worst = Math.max(...first);
  const spread = [...first]
    .sort((a, b) => a - b)
    .map((ms) => ms.toFixed(0))
    .join(' / ');
  return [
    {
      scenario: 'stop',
      metric: `the first stop after start, at the first delta: stop → stopped done frame (ms; worst of ${times} fresh processes: ${spread}; baseline: a later stop on the same process, median)`,
      baseline: later,
      ours: worst,
      ratio: worst / later,
      target: '≤ 1000 ms',
      met: worst <= 1000,
    },
  ];
};
