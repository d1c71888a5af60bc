import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { createApp, createServices } from '../../src/app';
import { RedisStore } from '../../src/store/redis';
import { SERVICES, uniqueName } from '../support/backends';
import { type Client, createClient, postChat } from '../support/client';
import { DEFAULT_TOKENS, DRIP_ANSWER, drip } from '../support/openai-stub';
import { startProxy } from '../support/proxy';
import {
  startServer,
  startServerBehindPostgresProxy,
  startServerBehindRedisProxy,
  type TestServer,
} from '../support/server';
import { until } from '../support/wait';
import { connect, connectAuthenticated, repliesSeen, type WsClient } from '../support/ws';

/** Polls `probe` every 50 ms until it returns true; resolves to the time it took. */
const within = async (ms: number, probe: () => Promise<boolean>) => {
  const started = performance.now();
  while (performance.now() - started < ms) {
    if (await probe().catch(() => false)) return performance.now() - started;
    await Bun.sleep(50);
  }
  throw new Error(`not recovered within ${ms} ms`);
};

/**
 * Sends messages from `sender` until `follower`, a socket of the same conversation on
 * another instance, sees their end as well (the two instances have heard each other, or
 * a late one's subscription is back); within 10 s.
 */
const untilFollowed = async (sender: WsClient, follower: WsClient) => {
  for (const deadline = Date.now() + 10_000; ; ) {
    sender.send({ type: 'chat.message', content: 'can you hear me?' });
    const sent = await sender.reply();
    expect(sent.final.done).toBe(true);
    const heard = await follower.next((f) => f.type === 'chat.stream' && f.done, 1000).catch(() => undefined);
    if (heard) {
      expect(heard).toEqual(sent.final);
      return;
    }
    expect(Date.now()).toBeLessThan(deadline);
  }
};

// Outages need a networked dependency: these run when the suite runs on PostgreSQL + Redis.
describe.if(Boolean(SERVICES.redisUrl))('Redis goes away and comes back', () => {
  let proxied: Awaited<ReturnType<typeof startServerBehindRedisProxy>>;
  let server: TestServer;
  let proxy: typeof proxied.proxy;
  let api: Client;

  beforeAll(async () => {
    proxied = await startServerBehindRedisProxy('fault');
    ({ server, proxy } = proxied);
    api = createClient(server.url);
  });
  afterAll(() => proxied.stop());

  test('fails closed for security state, open for limits, and recovers without a restart', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    // This socket has chatted, so it already knows the history: the provider could be
    // asked without the database, but no answer may start for a message not stored.
    ws.send({ type: 'chat.message', content: 'before' });
    expect((await ws.reply()).final.done).toBe(true);
    await proxy.cut();

    const health = await api.request('GET', '/api/health/');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unhealthy', redis: 'error' });
    // Fail closed: nothing that needs the blacklist or the lockout counter lets anyone in.
    expect((await api.request('GET', '/api/auth/me', { token: me.access })).status).toBe(503);
    expect(
      (
        await api.request('POST', '/api/token/pair', {
          body: { username: me.user.username, password: me.user.password },
        })
      ).status,
    ).toBe(503);
    expect((await api.request('POST', '/api/token/refresh', { body: { refresh: me.refresh } })).status).toBe(
      503,
    );
    expect((await api.request('POST', '/api/auth/logout', { token: me.access })).status).toBe(503);
    const fresh = await connect(`${server.wsUrl}/ws/chat/${me.conversationId}/`);
    fresh.send({ type: 'auth', token: me.access });
    expect(await fresh.next()).toMatchObject({ type: 'chat.error', code: 'INTERNAL_ERROR' });
    expect((await fresh.closed).code).toBe(1011);
    // Fail open: the already-authenticated socket keeps chatting (rate limit and lock skipped, logged).
    ws.send({ type: 'chat.message', content: 'during the outage' });
    expect((await ws.reply()).final.done).toBe(true);
    expect(server.logs.some((l) => l.includes('rate limit skipped'))).toBe(true);

    await proxy.restore();
    const took = await within(3000, async () => (await api.request('GET', '/api/health/')).status === 200);
    expect(took).toBeLessThan(3000);
    expect((await api.request('GET', '/api/auth/me', { token: me.access })).status).toBe(200);
    const again = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    again.send({ type: 'chat.message', content: 'after the outage' });
    expect((await again.reply()).final.done).toBe(true);
    ws.close();
    again.close();
  });

  test('while Redis does not answer, a provider request is sent ahead of a claim at most once per user', async () => {
    const me = await api.signUp();
    const second = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
    const first = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const other = await connectAuthenticated(server.wsUrl, second, me.access);
    // Both sockets remember their history and saw room in the user's window.
    for (const ws of [first, other]) {
      ws.send({ type: 'chat.message', content: 'before the outage' });
      expect((await ws.reply()).final.done).toBe(true);
    }
    // Held rather than cut: each claim waits out its 2 s command timeout, long enough for a
    // request sent ahead of it to reach the provider.
    proxy.hold();
    first.send({ type: 'chat.message', content: 'first, Redis silent' });
    expect((await first.reply()).final.done).toBe(true);
    // That claim failed, so nothing more is expected of the store: no request ahead of the claim.
    other.send({ type: 'chat.message', content: 'other, Redis silent' });
    expect((await other.reply()).final.done).toBe(true);
    expect(server.stub.requestsFor('other, Redis silent')).toHaveLength(1);
    expect(server.stub.requestsFor('other, Redis silent')[0]?.finished).toBe(true);
    // The first socket did send one ahead (its claim then failed, so it was sent again).
    expect(server.stub.requestsFor('first, Redis silent')).toHaveLength(2);
    proxy.letGo();
    await within(3000, async () => (await api.request('GET', '/api/health/')).status === 200);
    first.close();
    other.close();
  });

  test('a conversation lock that could not be released is released once Redis is back', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: 'hold the lock [stub:slow:100]' });
    await ws.next((f) => f.type === 'chat.stream');
    await proxy.cut();
    expect((await ws.reply()).final.done).toBe(true);
    const direct = new Redis(SERVICES.redisUrl as string, { keyPrefix: proxied.prefix });
    const lockKey = `lock:conversation:${me.conversationId}`;
    expect(await direct.exists(lockKey)).toBe(1); // still held: the release could not reach Redis
    await proxy.restore();
    await within(3000, async () => (await direct.exists(lockKey)) === 0);
    await direct.quit();
    ws.close();
  });

  test('a claim Redis answers too late is released all the same: the conversation is not left locked', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    // The claim waits in the proxy past the store's 1 s deadline: the lock is taken locally
    // only (SPEC §10) and the answer streams; Redis applies the claim once let go.
    proxy.hold();
    ws.send({ type: 'chat.message', content: 'while Redis hangs' });
    expect((await ws.reply()).final.done).toBe(true);
    proxy.letGo();
    const direct = new Redis(SERVICES.redisUrl as string, { keyPrefix: proxied.prefix });
    await within(2000, async () => (await direct.exists(`lock:conversation:${me.conversationId}`)) === 0);
    await direct.quit();
    ws.send({ type: 'chat.message', content: 'and now' });
    expect((await ws.reply()).final).toMatchObject({ type: 'chat.stream', done: true });
    ws.close();
  });
});

describe.if(Boolean(SERVICES.databaseUrl))('PostgreSQL connection lost and restored', () => {
  let proxied: Awaited<ReturnType<typeof startServerBehindPostgresProxy>>;
  let proxy: typeof proxied.proxy;
  let server: TestServer;
  let api: Client;

  beforeAll(async () => {
    proxied = await startServerBehindPostgresProxy();
    ({ server, proxy } = proxied);
    api = createClient(server.url);
  });
  afterAll(() => proxied.stop());

  test('REST answers 503, WebSocket INTERNAL_ERROR, health 503, no crash; service resumes within 2 s', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    // This socket has chatted, so it already knows the history: the provider could be
    // asked without the database, but no answer may start for a message not stored.
    ws.send({ type: 'chat.message', content: 'before' });
    expect((await ws.reply()).final.done).toBe(true);
    await proxy.cut();

    const list = await api.request('GET', '/api/conversations/', { token: me.access });
    expect(list.status).toBe(503);
    expect(list.body).toEqual({ detail: 'Service temporarily unavailable' });
    expect((await api.request('GET', '/api/health/')).body).toMatchObject({
      status: 'unhealthy',
      database: 'error',
    });
    ws.send({ type: 'chat.message', content: 'lost?' });
    expect(await ws.next()).toMatchObject({ type: 'chat.error', code: 'INTERNAL_ERROR' });
    expect(ws.frames.filter((f) => f.type === 'chat.stream' && f.done === false)).toHaveLength(
      DEFAULT_TOKENS.length,
    );
    const fresh = await connect(`${server.wsUrl}/ws/chat/${me.conversationId}/`);
    fresh.send({ type: 'auth', token: me.access });
    expect((await fresh.next()).code).toBe('INTERNAL_ERROR');
    expect((await fresh.closed).code).toBe(1011);

    await proxy.restore();
    const took = await within(
      2000,
      async () => (await api.request('GET', '/api/conversations/', { token: me.access })).status === 200,
    );
    expect(took).toBeLessThan(2000);
    // The socket survived the outage and chats again.
    ws.send({ type: 'chat.message', content: 'back again' });
    expect((await ws.reply()).final.done).toBe(true);
    const stored = (
      await api.request('GET', `/api/conversations/${me.conversationId}/messages`, { token: me.access })
    ).body.items.map((m: { content: string }) => m.content);
    const answer = DEFAULT_TOKENS.join('');
    expect(stored).toEqual(['before', answer, 'back again', answer]);
    expect(
      server.stub.requests
        .at(-1)
        ?.messages.slice(1)
        .map((m) => m.content),
    ).toEqual(stored.slice(0, -1));
    expect((await api.request('GET', '/api/health/')).status).toBe(200);
    ws.close();
  });

  test('a frame that cannot be checked while a reply streams is refused ALREADY_PROCESSING, not INTERNAL_ERROR (which would read as the reply’s end)', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: drip('long enough', 100) });
    await ws.next((f) => f.type === 'chat.stream');
    // A regenerate reads the conversation before it is admitted: that read fails.
    proxy.hold();
    ws.send({ type: 'chat.regenerate' });
    const refused = await ws.next((f) => f.type === 'chat.error', 4000);
    proxy.letGo();
    expect(refused.code).toBe('ALREADY_PROCESSING');
    const rest = await ws.reply();
    expect(rest.final).toMatchObject({ type: 'chat.stream', done: true });
    const stored = (
      await api.request('GET', `/api/conversations/${me.conversationId}/messages`, { token: me.access })
    ).body.items;
    expect(stored.map((m: { status: string }) => m.status)).toEqual(['complete', 'complete']);
    expect(stored[1].content).toBe(DRIP_ANSWER);
    ws.close();
  });
});

describe.if(Boolean(SERVICES.databaseUrl))('PostgreSQL slow while an answer starts', () => {
  let proxied: Awaited<ReturnType<typeof startServerBehindPostgresProxy>>;
  let proxy: typeof proxied.proxy;
  let server: TestServer;

  beforeAll(async () => {
    proxied = await startServerBehindPostgresProxy({ AI_TIMEOUT_SECONDS: '1' });
    ({ server, proxy } = proxied);
  });
  afterAll(() => proxied.stop());

  test('the wait for the question to be stored is not the provider’s silence: no AI_TIMEOUT', async () => {
    const api = createClient(server.url);
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: 'before' });
    expect((await ws.reply()).final.done).toBe(true);
    // This socket knows the history, so the provider is asked at once; the question's
    // write waits in the proxy 1.3 s, longer than AI_TIMEOUT_SECONDS (and shorter than
    // the database's 1.5 s deadline), while the answer's tokens have already come.
    proxy.hold();
    ws.send({ type: 'chat.message', content: 'slow to store' });
    await until(() => server.stub.requests.length === 2, 'the provider asked');
    await Bun.sleep(1300);
    proxy.letGo();
    const { final } = await ws.reply();
    expect(final).toMatchObject({ type: 'chat.stream', done: true });
    const { body } = await api.request('GET', `/api/conversations/${me.conversationId}/messages`, {
      token: me.access,
    });
    expect(body.items.map((m: { content: string; status: string }) => [m.content, m.status])).toEqual([
      ['before', 'complete'],
      [DEFAULT_TOKENS.join(''), 'complete'],
      ['slow to store', 'complete'],
      [DEFAULT_TOKENS.join(''), 'complete'],
    ]);
    ws.close();
  });
});

describe.if(Boolean(SERVICES.databaseUrl))('PostgreSQL connection lost while the question is stored', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
    // The connection that writes this question is ended by PostgreSQL itself (57P01),
    // after every check before it has passed.
    await server.resources.database.db.execute(
      sql.raw(`create function cut_the_line() returns trigger language plpgsql as $$
        begin
          if new.content = 'cut the line' then perform pg_terminate_backend(pg_backend_pid()); end if;
          return new;
        end $$;
        create trigger cut_the_line before insert on messages
          for each row execute function cut_the_line();`),
    );
  });
  afterAll(() => server.stop());

  test('the AI SDK endpoint answers 503, not 500; the WebSocket INTERNAL_ERROR; nothing is stored, and the next message is answered', async () => {
    const api = createClient(server.url);
    const me = await api.signUp();
    const refused = await postChat(server.url, me.access, me.conversationId, 'cut the line');
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ detail: 'Service temporarily unavailable' });

    const healthy = async () => (await api.request('GET', '/api/health/')).status === 200;
    await within(2000, healthy);
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    await within(2000, async () => {
      ws.send({ type: 'chat.message', content: 'cut the line' });
      const frame = await ws.next((f) => f.type === 'chat.error');
      return frame.code === 'INTERNAL_ERROR';
    });
    // Back within 2 s (SPEC §10), and nothing of the two questions was kept.
    await within(2000, healthy);
    await within(2000, async () => {
      ws.send({ type: 'chat.message', content: 'and now?' });
      return (await ws.reply()).final.done === true;
    });
    const { body } = await api.request('GET', `/api/conversations/${me.conversationId}/messages`, {
      token: me.access,
    });
    expect(body.items.map((m: { content: string }) => m.content)).toEqual([
      'and now?',
      DEFAULT_TOKENS.join(''),
    ]);
    ws.close();
  });
});

/**
 * A second instance beside `first`, as another process would be: the same database and
 * provider stub, its own connection to Redis under the same key prefix. Its `stop`
 * closes that connection too.
 */
const besideOf = async (first: TestServer, prefix: string) => {
  const store = new RedisStore(SERVICES.redisUrl as string, prefix);
  await store.connect();
  const server = await startServer({}, { store, database: first.resources.database, stub: first.stub });
  const stopServer = server.stop;
  return Object.assign(server, {
    stop: async () => {
      await stopServer();
      await store.close();
    },
  });
};

describe.if(Boolean(SERVICES.redisUrl))('Redis is away when an instance starts', () => {
  test('it starts, and once Redis is back it hears the other instances: a reply elsewhere reaches its sockets', async () => {
    const proxy = await startProxy(SERVICES.redisUrl as string);
    await proxy.cut();
    const prefix = `${uniqueName('late')}:`;
    const away = new RedisStore(proxy.url, prefix);
    await away.connect();
    const late = await startServer({}, { store: away });
    const other = await besideOf(late, prefix);
    try {
      await proxy.restore();
      // Its store client reconnects on its own backoff: the late instance is healthy first.
      await until(
        async () => (await fetch(`${late.url}/api/health/`)).status === 200,
        'the late instance reaches Redis',
        10_000,
      );
      const me = await createClient(other.url).signUp();
      const sender = await connectAuthenticated(other.wsUrl, me.conversationId, me.access);
      const follower = await connectAuthenticated(late.wsUrl, me.conversationId, me.access);
      // The instance retries its subscription every few seconds; until then it sees nothing.
      await untilFollowed(sender, follower);
      sender.close();
      follower.close();
    } finally {
      await other.stop();
      await late.stop();
      await away.close();
      proxy.stop();
    }
  }, 30_000);
});

describe.if(Boolean(SERVICES.redisUrl))('one of two instances loses Redis while it follows a reply', () => {
  test('a message sent there is refused ALREADY_PROCESSING (no second reply), and the text it missed is filled in, not skipped', async () => {
    const proxy = await startProxy(SERVICES.redisUrl as string);
    const prefix = `${uniqueName('follow')}:`;
    const away = new RedisStore(proxy.url, prefix);
    await away.connect();
    const follows = await startServer({}, { store: away });
    const runs = await besideOf(follows, prefix);
    try {
      const api = createClient(runs.url);
      const me = await api.signUp();
      const sender = await connectAuthenticated(runs.wsUrl, me.conversationId, me.access);
      const follower = await connectAuthenticated(follows.wsUrl, me.conversationId, me.access);
      // Until the two have heard each other, a reply here is not announced there.
      await untilFollowed(sender, follower);
      const from = follower.frames.length;
      sender.send({ type: 'chat.message', content: drip('a long one', 100) });
      const deltas = () => follower.frames.slice(from).filter((f) => f.type === 'chat.stream' && !f.done);
      await until(() => deltas().length >= 5, 'the follower shows the answer');
      await proxy.cut();
      // The lock fails open without Redis (SPEC §10), but this instance knows a reply streams.
      follower.send({ type: 'chat.message', content: 'me too' });
      expect((await follower.next((f) => f.type === 'chat.error')).code).toBe('ALREADY_PROCESSING');
      await Bun.sleep(300); // the deltas published meanwhile never reach this instance
      await proxy.restore();
      const done = await follower.next((f) => f.type === 'chat.stream' && f.done, 10_000);
      expect((await sender.reply()).final).toEqual(done);
      const frames = follower.frames.slice(from);
      expect(frames.filter((f) => f.type === 'chat.start' || f.type === 'message.created')).toHaveLength(2);
      expect(
        deltas()
          .map((f) => f.content)
          .join(''),
      ).toBe(DRIP_ANSWER);
      const stored = (
        await api.request('GET', `/api/conversations/${me.conversationId}/messages`, { token: me.access })
      ).body.items.map((m: { content: string }) => m.content);
      expect(stored.slice(-2)).toEqual([drip('a long one', 100), DRIP_ANSWER]);
      sender.close();
      follower.close();
    } finally {
      await runs.stop();
      await follows.stop();
      await away.close();
      proxy.stop();
    }
  }, 30_000);
});

describe.if(Boolean(SERVICES.redisUrl))('a second reply begins while another instance’s is followed', () => {
  test('its instance ends the followed reply for its sockets first (INTERNAL_ERROR): one reply at a time on a socket', async () => {
    const prefix = `${uniqueName('twice')}:`;
    const stores = [
      new RedisStore(SERVICES.redisUrl as string, prefix),
      new RedisStore(SERVICES.redisUrl as string, prefix),
    ];
    await Promise.all(stores.map((store) => store.connect()));
    const runs = await startServer({}, { store: stores[0] });
    const follows = await startServer(
      {},
      { store: stores[1], database: runs.resources.database, stub: runs.stub },
    );
    const redis = new Redis(SERVICES.redisUrl as string, { keyPrefix: prefix });
    try {
      const api = createClient(runs.url);
      const me = await api.signUp();
      const sender = await connectAuthenticated(runs.wsUrl, me.conversationId, me.access);
      const follower = await connectAuthenticated(follows.wsUrl, me.conversationId, me.access);
      // Until the two have heard each other, a reply there is not announced here.
      await untilFollowed(sender, follower);
      sender.send({ type: 'chat.message', content: drip('a long one', 100) });
      const followed = await follower.next((f) => f.type === 'chat.start');
      await follower.next((f) => f.type === 'chat.stream');
      // As when its lock was taken while Redis was away (SPEC §10: it fails open), or expired.
      expect(await redis.del(`lock:conversation:${me.conversationId}`)).toBe(1);
      follower.send({ type: 'chat.message', content: 'and one here' });
      const own = await follower.next((f) => f.type === 'chat.start' && f.message_id !== followed.message_id);
      await follower.next(
        (f) => f.type === 'chat.stream' && f.done && f.message_id === own.message_id,
        10_000,
      );
      await sender.next(
        (f) => f.type === 'chat.stream' && f.done && f.message_id === followed.message_id,
        10_000,
      );
      expect(repliesSeen(follower.frames).problems).toEqual([]);
      expect(repliesSeen(sender.frames).problems).toEqual([]);
      sender.close();
      follower.close();
    } finally {
      await follows.stop();
      await runs.stop();
      redis.disconnect();
      await Promise.all(stores.map((store) => store.close()));
    }
  }, 30_000);
});

describe.if(Boolean(SERVICES.redisUrl))(
  'an answer over before another instance could ask for its text',
  () => {
    test('still reaches that instance whole: the end carries the text', async () => {
      const a = await startServer();
      const proxy = await startProxy(SERVICES.redisUrl as string);
      const storeB = new RedisStore(proxy.url, a.testStore.prefix as string);
      await storeB.connect();
      const servicesB = createServices({ ...a.resources, store: storeB });
      await servicesB.ready;
      const appB = createApp({ ...a.resources, store: storeB }, servicesB).listen({
        port: 0,
        hostname: '127.0.0.1',
      });
      try {
        await Bun.sleep(300); // the two instances hear each other's hello
        const me = await createClient(a.url).signUp();
        const sender = await connectAuthenticated(a.wsUrl, me.conversationId, me.access);
        const follower = await connectAuthenticated(
          `ws://127.0.0.1:${appB.server?.port}`,
          me.conversationId,
          me.access,
        );
        // B hears A's events, but its own requests (the text channel, the follow) wait in the proxy.
        proxy.hold();
        sender.send({ type: 'chat.message', content: 'quick [stub:burst]' });
        const sent = await sender.reply();
        await follower.next((f) => f.type === 'chat.start');
        await Bun.sleep(300);
        proxy.letGo();
        const seen = await follower.reply();
        expect(seen.deltas.join('')).toBe(DEFAULT_TOKENS.join(''));
        expect(seen.final).toEqual(sent.final);
        sender.close();
        follower.close();
      } finally {
        await servicesB.shutdown(0);
        await appB.stop(true);
        await storeB.close();
        proxy.stop();
        await a.stop();
      }
    }, 30_000);
  },
);
