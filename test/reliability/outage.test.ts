import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createTestDatabase, SERVICES, type TestDatabase, uniqueName } from '../support/backends';
import { type Client, createClient } from '../support/client';
import { type OpenAIStub, startOpenAIStub } from '../support/openai-stub';
import { spawnServerProcess } from '../support/process';
import { startProxy } from '../support/proxy';
import { connect } from '../support/ws';

/**
 * SPEC §10: however long PostgreSQL or Redis is away, every request answers within
 * 2 s (a 503 with the SPEC body), nothing crashes, and service resumes within 2 s of
 * the dependency's return. Two real server processes, each reaching PostgreSQL and
 * Redis through TCP proxies the test controls, take a steady stream of requests
 * through an outage of 16 s: first a dependency that accepts connections and never
 * answers (the hard case: connection attempts and queries hang), then one that
 * refuses them.
 */

const SERVICE_UNAVAILABLE = { detail: 'Service temporarily unavailable' };
const OUTAGE_MS = 16_000;
const ANSWER_WITHIN_MS = 2000;

type Proxy = Awaited<ReturnType<typeof startProxy>>;

interface Answer {
  what: string;
  sentAt: number;
  took: number;
  status: number | string;
  body: unknown;
}

describe.if(Boolean(SERVICES.databaseUrl && SERVICES.redisUrl))('a long outage, two instances', () => {
  let database: TestDatabase;
  let stub: OpenAIStub;
  let pg: Proxy;
  let redis: Proxy;
  let children: Awaited<ReturnType<typeof spawnServerProcess>>[];
  let apis: Client[];
  let me: Awaited<ReturnType<Client['signUp']>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    stub = startOpenAIStub();
    await stub.ready;
    pg = await startProxy(database.url as string);
    redis = await startProxy(SERVICES.redisUrl as string);
    const prefix = `${uniqueName('outage')}:`;
    children = [];
    for (let i = 0; i < 2; i++)
      children.push(
        await spawnServerProcess({
          OPENAI_API_KEY: 'sk-test',
          OPENAI_BASE_URL: stub.url,
          LOG_LEVEL: 'fatal',
          DATABASE_URL: pg.url,
          REDIS_URL: redis.url,
          REDIS_KEY_PREFIX: prefix,
        }),
      );
    apis = children.map((child) => createClient(child.url));
    me = await (apis[0] as Client).signUp();
  }, 60_000);
  afterAll(async () => {
    for (const { child } of children) child.kill('SIGTERM');
    await Promise.all(children.map(({ child }) => child.exited));
    pg.stop();
    redis.stop();
    stub.stop();
    await database.drop();
  });

  /** One request of each kind to each instance, every 100 ms, until `until` resolves. */
  const steadyStream = async (until: Promise<void>) => {
    const answers: Answer[] = [];
    const pending: Promise<void>[] = [];
    let running = true;
    void until.then(() => {
      running = false;
    });
    const timed = (what: string, run: () => Promise<{ status: number | string; body: unknown }>) => {
      const sentAt = performance.now();
      pending.push(
        run().then(
          ({ status, body }) => {
            answers.push({ what, sentAt, took: performance.now() - sentAt, status, body });
          },
          (error) => {
            answers.push({
              what,
              sentAt,
              took: performance.now() - sentAt,
              status: String(error),
              body: null,
            });
          },
        ),
      );
    };
    for (let tick = 0; running; tick++) {
      for (const [i, api] of apis.entries()) {
        const at = `instance ${i}`;
        timed(`${at} GET /api/conversations/`, () =>
          api.request('GET', '/api/conversations/', { token: me.access }),
        );
        timed(`${at} GET /api/auth/me`, () => api.request('GET', '/api/auth/me', { token: me.access }));
        timed(`${at} POST /api/token/pair`, () =>
          api.request('POST', '/api/token/pair', {
            body: { username: me.user.username, password: me.user.password },
          }),
        );
        timed(`${at} GET /api/health/`, () => api.request('GET', '/api/health/'));
        if (tick % 10 === 0)
          timed(`${at} WebSocket auth`, async () => {
            const ws = await connect(`${children[i]?.wsUrl}/ws/chat/${me.conversationId}/`);
            ws.send({ type: 'auth', token: me.access });
            const frame = await ws.next(() => true, 5000);
            const { code } = await ws.closed;
            return { status: `${frame.type}:${frame.code ?? ''}:${code}`, body: frame };
          });
      }
      await Bun.sleep(100);
    }
    await Promise.all(pending);
    return answers;
  };

  /** Hangs `proxy` for half of the outage, refuses for the other half, then restores it. */
  const outage = async (proxy: Proxy) => {
    proxy.hold();
    await Bun.sleep(OUTAGE_MS / 2);
    await proxy.cut();
    await Bun.sleep(OUTAGE_MS / 2);
  };

  const expectOutageAnswers = (answers: Answer[], failing: 'database' | 'redis') => {
    const slow = answers.filter((a) => a.took > ANSWER_WITHIN_MS);
    expect(slow.map((a) => `${a.what} took ${Math.round(a.took)} ms`)).toEqual([]);
    for (const answer of answers) {
      if (answer.what.endsWith('health/')) {
        expect(answer.status).toBe(503);
        expect(answer.body).toMatchObject({ status: 'unhealthy', [failing]: 'error' });
      } else if (answer.what.endsWith('WebSocket auth')) {
        expect(answer.status).toBe('chat.error:INTERNAL_ERROR:1011');
      } else {
        expect({ what: answer.what, status: answer.status, body: answer.body }).toEqual({
          what: answer.what,
          status: 503,
          body: SERVICE_UNAVAILABLE,
        });
      }
    }
    // Both halves of the outage were exercised, on both instances.
    for (const i of [0, 1])
      expect(answers.filter((a) => a.what.startsWith(`instance ${i}`)).length).toBeGreaterThan(500);
  };

  const expectRecoveryWithin2s = async () => {
    const restoredAt = performance.now();
    for (const api of apis) {
      while ((await api.request('GET', '/api/conversations/', { token: me.access })).status !== 200) {
        expect(performance.now() - restoredAt).toBeLessThan(2000);
        await Bun.sleep(50);
      }
    }
    for (const api of apis) {
      expect((await api.request('GET', '/api/health/')).status).toBe(200);
      expect((await api.login(me.user.username)).access).toBeString();
    }
  };

  for (const [name, failing] of [
    ['PostgreSQL', 'database'],
    ['Redis', 'redis'],
  ] as const)
    test(`${name} hangs then refuses for ${OUTAGE_MS / 1000} s: every answer is a 503 within 2 s, then service resumes`, async () => {
      const proxy = failing === 'database' ? pg : redis;
      const answers = await steadyStream(outage(proxy));
      await proxy.restore();
      await expectRecoveryWithin2s();
      expectOutageAnswers(answers, failing);
    }, 60_000);
});
