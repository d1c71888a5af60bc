import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHmac } from 'node:crypto';
import { generateKeyPair, SignJWT } from 'jose';
import { cleanContent } from '../../src/lib/sanitize';
import { type Client, createClient } from '../support/client';
import { hostileText, rng } from '../support/fuzz';
import { startServer, type TestServer } from '../support/server';
import { connect, connectAuthenticated } from '../support/ws';

const JWT_SECRET = 'the-real-signing-key-of-this-test-server-0123456789';
let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer({
    JWT_SECRET_KEY: JWT_SECRET,
    CHAT_RATE_LIMIT: '1000',
    WS_MAX_PAYLOAD_BYTES: '65536',
  });
  api = createClient(server.url);
});
afterAll(() => server.stop());

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

describe('JWT attacks are refused over REST and WebSocket', async () => {
  const forge = async (claims: Record<string, unknown>, secret = JWT_SECRET, alg = 'HS256') =>
    new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret));

  const attacks: [string, (userId: string) => Promise<string>][] = [
    [
      'alg none',
      async (sub) =>
        `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub, jti: 'x', type: 'access', iat: now(), exp: now() + 600 })}.`,
    ],
    [
      'RS256 instead of HS256 (algorithm confusion)',
      async (sub) => {
        const { privateKey } = await generateKeyPair('RS256');
        return new SignJWT({ sub, jti: 'x', type: 'access', iat: now(), exp: now() + 600 })
          .setProtectedHeader({ alg: 'RS256' })
          .sign(privateKey);
      },
    ],
    [
      'HS512 with the right key',
      (sub) => forge({ sub, jti: 'x', type: 'access', iat: now(), exp: now() + 600 }, JWT_SECRET, 'HS512'),
    ],
    [
      'the wrong key',
      (sub) =>
        forge(
          { sub, jti: 'x', type: 'access', iat: now(), exp: now() + 600 },
          'some-other-key-that-is-long-enough-000',
        ),
    ],
    [
      'an expired token',
      (sub) => forge({ sub, jti: 'x', type: 'access', iat: now() - 7200, exp: now() - 3600 }),
    ],
    [
      'an iat in the future',
      (sub) => forge({ sub, jti: 'x', type: 'access', iat: now() + 3600, exp: now() + 7200 }),
    ],
    ['a missing jti', (sub) => forge({ sub, type: 'access', iat: now(), exp: now() + 600 })],
    ['a missing type', (sub) => forge({ sub, jti: 'x', iat: now(), exp: now() + 600 })],
    ['an unknown type', (sub) => forge({ sub, jti: 'x', type: 'admin', iat: now(), exp: now() + 600 })],
    ['a missing exp', (sub) => forge({ sub, jti: 'x', type: 'access', iat: now() })],
    [
      'a crit header the server does not understand',
      // Signed by hand: jose itself refuses to produce one.
      async (sub) => {
        const unsigned = `${b64({ alg: 'HS256', crit: ['x-extension'], 'x-extension': 1 })}.${b64({ sub, jti: 'x', type: 'access', iat: now(), exp: now() + 600 })}`;
        return `${unsigned}.${createHmac('sha256', JWT_SECRET).update(unsigned).digest('base64url')}`;
      },
    ],
    [
      'a token older than its lifetime',
      (sub) => forge({ sub, jti: 'x', type: 'access', iat: now() - 86_400, exp: now() + 600 }),
    ],
    [
      'claims of the wrong type',
      (sub) => forge({ sub, jti: 42, type: 'access', iat: now(), exp: now() + 600 }),
    ],
    ['two segments', async (sub) => `${b64({ alg: 'HS256' })}.${b64({ sub })}`],
    [
      'four segments',
      async (sub) => `${await forge({ sub, jti: 'x', type: 'access', iat: now(), exp: now() + 600 })}.x`,
    ],
    [
      'a signature that is not base64url',
      async (sub) => `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub })}.%%%`,
    ],
    // Signed with the real key, but `sub` is no user id: the database reads it as a
    // UUID (another system's token sharing the key, or a forged dev token was a 500).
    [
      'a sub that is not a UUID',
      () => forge({ sub: 'admin', jti: 'x', type: 'access', iat: now(), exp: now() + 600 }),
    ],
    ['a numeric sub', () => forge({ sub: '42', jti: 'x', type: 'access', iat: now(), exp: now() + 600 })],
    [
      'a sub with a urn:uuid: prefix',
      (sub) => forge({ sub: `urn:uuid:${sub}`, jti: 'x', type: 'access', iat: now(), exp: now() + 600 }),
    ],
    [
      'a sub with a NUL',
      (sub) => forge({ sub: `${sub}\u0000`, jti: 'x', type: 'access', iat: now(), exp: now() + 600 }),
    ],
    [
      'a user that does not exist',
      () => forge({ sub: crypto.randomUUID(), jti: 'x', type: 'access', iat: now(), exp: now() + 600 }),
    ],
  ];

  test('a correctly forged token with the real key is accepted (the forge itself works)', async () => {
    const me = await api.signUp();
    const token = await forge({
      sub: me.user.id,
      jti: crypto.randomUUID(),
      type: 'access',
      iat: now(),
      exp: now() + 600,
    });
    expect((await api.request('GET', '/api/auth/me', { token })).status).toBe(200);
  });

  test.each(attacks)('%s', async (_, make) => {
    const me = await api.signUp();
    const token = await make(me.user.id);
    expect((await api.request('GET', '/api/auth/me', { token })).status).toBe(401);
    const ws = await connect(`${server.wsUrl}/ws/chat/${me.conversationId}/`);
    ws.send({ type: 'auth', token });
    expect((await ws.next()).code).toBe('AUTH_FAILED');
    expect((await ws.closed).code).toBe(4001);
  });

  test('a refresh or a logout with a validly signed token whose sub is not a UUID is 401, not 500', async () => {
    const me = await api.signUp();
    const refresh = await forge({
      sub: 'admin',
      jti: crypto.randomUUID(),
      type: 'refresh',
      iat: now(),
      exp: now() + 600,
    });
    expect((await api.request('POST', '/api/token/refresh', { body: { refresh } })).status).toBe(401);
    const logout = await api.request('POST', '/api/auth/logout', { token: me.access, body: { refresh } });
    expect(logout.status).toBe(401); // a refresh token that is not theirs, as any other
    const access = await forge({
      sub: 'admin',
      jti: crypto.randomUUID(),
      type: 'access',
      iat: now(),
      exp: now() + 600,
    });
    expect((await api.request('POST', '/api/auth/logout', { token: access })).status).toBe(401);
  });

  test('a tampered payload is refused', async () => {
    const me = await api.signUp();
    const other = await api.signUp();
    const [header, , signature] = me.access.split('.');
    const claims = JSON.parse(Buffer.from(me.access.split('.')[1] as string, 'base64url').toString());
    const tampered = `${header}.${b64({ ...claims, sub: other.user.id })}.${signature}`;
    expect((await api.request('GET', '/api/auth/me', { token: tampered })).status).toBe(401);
  });
});

describe('WebSocket fuzzing', () => {
  test('thousands of hostile frames: no crash, no INTERNAL_ERROR, the socket stays usable, memory bounded', async () => {
    const random = rng(20261124);
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const anonymous = await connect(`${server.wsUrl}/ws/chat/${me.conversationId}/`);
    Bun.gc(true);
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 3000; i++) {
      const text = hostileText(random);
      if (text.length > 60_000) continue;
      // Hostile auth frames on the authenticated socket are ignored; on the anonymous one they would close it.
      ws.sendRaw(text);
      if (i % 500 === 0) await Bun.sleep(10);
    }
    for (let i = 0; i < 200; i++)
      anonymous.sendRaw(JSON.stringify({ type: 'chat.message', content: hostileText(random) }));
    // Let the server answer everything (until no frame arrives for a while), then chat.
    for (let last = -1; last !== ws.frames.length; ) {
      last = ws.frames.length;
      await Bun.sleep(500);
    }
    let final: Record<string, unknown> | undefined;
    for (let attempt = 0; attempt < 20 && !final?.done; attempt++) {
      const seen = ws.frames.length;
      ws.send({ type: 'chat.message', content: 'are you still there?' });
      final = await ws.next(
        (f) => ws.frames.indexOf(f) >= seen && (f.done === true || f.type === 'chat.error'),
        10_000,
      );
      if (final.code === 'ALREADY_PROCESSING') await Bun.sleep(200);
    }
    expect(final).toMatchObject({ done: true });
    expect(ws.frames.filter((f) => f.code === 'INTERNAL_ERROR')).toEqual([]);
    expect(anonymous.frames.every((f) => f.code === 'AUTH_REQUIRED')).toBe(true);
    expect((await api.request('GET', '/api/health/')).status).toBe(200);
    Bun.gc(true);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024);
    ws.close();
    anonymous.close();
  }, 90_000);

  test('prototype-pollution keys do not pollute', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.sendRaw('{"type":"chat.message","content":"hi","__proto__":{"polluted":"yes"}}');
    ws.sendRaw('{"constructor":{"prototype":{"polluted":"yes"}},"type":"pong"}');
    await ws.reply();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    ws.close();
  });

  test('SQL-ish and script-ish content is stored verbatim-clean', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const inputs = [
      "Robert'); DROP TABLE messages;--",
      "1' OR '1'='1",
      'SELECT * FROM users WHERE id = $1',
      '<script>document.cookie</script>what',
      '<iframe src="javascript:alert(1)"></iframe>frame',
      '"><svg onload=alert(1)>svg',
      'x <= y && y >= z',
    ];
    for (const content of inputs) {
      ws.send({ type: 'chat.message', content });
      expect((await ws.reply()).final.done).toBe(true);
    }
    const stored = (
      await api.request('GET', `/api/conversations/${me.conversationId}/messages?limit=100`, {
        token: me.access,
      })
    ).body.items
      .filter((m: { role: string }) => m.role === 'user')
      .map((m: { content: string }) => m.content);
    expect(stored).toEqual(inputs.map(cleanContent));
    expect(stored.slice(0, 3)).toEqual(inputs.slice(0, 3));
    ws.close();
  });
});

describe('REST fuzzing', () => {
  test('generated bodies, queries and ids at every route never produce a 5xx', async () => {
    const random = rng(7);
    const me = await api.signUp();
    const routes: [string, string][] = [
      ['POST', '/api/auth/register'],
      ['POST', '/api/token/pair'],
      ['POST', '/api/token/refresh'],
      ['POST', '/api/auth/logout'],
      ['GET', '/api/auth/me'],
      ['GET', '/api/conversations/'],
      ['POST', '/api/conversations/'],
      ['GET', `/api/conversations/${me.conversationId}`],
      ['PATCH', `/api/conversations/${me.conversationId}`],
      ['GET', `/api/conversations/${me.conversationId}/messages`],
    ];
    const statuses = new Set<number>();
    const serverErrors: string[] = [];
    for (let i = 0; i < 60; i++) {
      for (const [method, path] of routes) {
        const raw = hostileText(random);
        const query = `?limit=${encodeURIComponent(hostileText(random).slice(0, 50).toWellFormed())}&offset=${Math.floor(random() * 1e6) - 5}`;
        const token = random() < 0.5 ? me.access : undefined;
        const res = await api.request(method, method === 'GET' ? `${path}${query}` : path, {
          raw: method === 'GET' ? undefined : raw,
          token,
        });
        statuses.add(res.status);
        if (res.status >= 500)
          serverErrors.push(`${method} ${path} → ${res.status} for ${raw.slice(0, 200)}`);
      }
    }
    for (const id of [
      '%00',
      '..%2F..',
      "1'--",
      'x'.repeat(500),
      '%F0%9F%98%80',
      '00000000-0000-0000-0000-00000000000g',
    ]) {
      const res = await api.request('GET', `/api/conversations/${id}`, { token: me.access });
      expect(res.status).toBeLessThan(500);
    }
    expect(serverErrors).toEqual([]);
    // The generated input reached the parser, the validator and the auth check alike.
    for (const status of [400, 401, 422]) expect(statuses).toContain(status);
    // The fuzzed logout calls blacklisted that token; a fresh login shows the server is fine.
    const fresh = await api.login(me.user.username);
    expect((await api.request('GET', '/api/auth/me', { token: fresh.access })).status).toBe(200);
  }, 120_000);
});

describe('client abuse', () => {
  test('a 10 MB frame is refused by the payload limit and the socket closes with 1009', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.sendRaw('x'.repeat(10 * 1024 * 1024));
    expect((await ws.closed).code).toBe(1009);
    expect((await api.request('GET', '/api/health/')).status).toBe(200);
  });

  test('10,000 frames as fast as possible: every one answered, and another user still chats meanwhile', async () => {
    const flooder = await api.signUp();
    const victim = await api.signUp();
    const flood = await connectAuthenticated(server.wsUrl, flooder.conversationId, flooder.access);
    const calm = await connectAuthenticated(server.wsUrl, victim.conversationId, victim.access);
    for (let i = 0; i < 10_000; i++) flood.sendRaw('{"type":"nope"}');
    calm.send({ type: 'chat.message', content: 'hello while someone floods' });
    expect((await calm.reply(20_000)).final.done).toBe(true);
    const answers = () => flood.frames.filter((f) => f.type === 'chat.error');
    const deadline = Date.now() + 30_000;
    while (answers().length < 10_000 && Date.now() < deadline) await Bun.sleep(50);
    expect(answers().length).toBe(10_000);
    expect(answers().every((f) => f.code === 'UNKNOWN_TYPE')).toBe(true);
    flood.close();
    calm.close();
  }, 60_000);

  test('sockets that never authenticate are all closed by the auth timeout', async () => {
    const quick = await startServer({ WS_AUTH_TIMEOUT_SECONDS: '1' });
    try {
      const me = await createClient(quick.url).signUp();
      const idle = await Promise.all(
        Array.from({ length: 50 }, () => connect(`${quick.wsUrl}/ws/chat/${me.conversationId}/`)),
      );
      const codes = await Promise.all(idle.map((ws) => ws.closed.then((c) => c.code)));
      expect(codes.every((code) => code === 4001)).toBe(true);
      expect(quick.services.registry.size).toBe(0);
    } finally {
      await quick.stop();
    }
  });
});
