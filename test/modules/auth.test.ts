import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { eq } from 'drizzle-orm';
import { users } from '../../src/db/schema';
import { type Client, createClient, STRONG_PASSWORD, uniqueUsername } from '../support/client';
import { DRIP_ANSWER, drip } from '../support/openai-stub';
import { startServer, type TestServer } from '../support/server';
import { connectAuthenticated } from '../support/ws';

let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer({ LOGIN_MAX_FAILURES: '3', LOGIN_LOCKOUT_MINUTES: '1' });
  api = createClient(server.url);
});
afterAll(() => server.stop());

const registerBody = (overrides: Record<string, unknown> = {}) => {
  const username = uniqueUsername();
  return { username, email: `${username}@example.com`, password: STRONG_PASSWORD, ...overrides };
};

// PostgreSQL's lower() takes each letter on its own: a word-final Σ is σ, as the
// unique index sees it. JavaScript's toLowerCase makes it ς.
const greek = () => `${uniqueUsername('x')}ασ`;

const decode = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString());

describe('POST /api/auth/register', () => {
  test('creates a user and answers 201 with id, username, email, date_joined and no hash', async () => {
    const body = registerBody();
    const res = await api.request('POST', '/api/auth/register', { body });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['date_joined', 'email', 'id', 'username']);
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.username).toBe(body.username);
    expect(new Date(res.body.date_joined).toISOString()).toBe(res.body.date_joined);
    expect(JSON.stringify(res.body)).not.toContain('argon2');
  });

  test('stores an Argon2id hash, never the password', async () => {
    const body = registerBody();
    const res = await api.request('POST', '/api/auth/register', { body });
    const [row] = await server.resources.database.db.select().from(users).where(eq(users.id, res.body.id));
    expect(row?.password.startsWith('$argon2id$')).toBe(true);
    expect(row?.password).not.toContain(body.password);
  });

  test('accepts Unicode letters and @.+-_ in usernames', async () => {
    const res = await api.request('POST', '/api/auth/register', {
      body: registerBody({ username: `Zoë.測試+a-b_c@${uniqueUsername('')}` }),
    });
    expect(res.status).toBe(201);
  });

  test.each([
    ['spaces', 'has space'],
    ['slash', 'a/b'],
    ['too long', 'a'.repeat(151)],
    ['empty', ''],
  ])('refuses a username with %s (422)', async (_, username) => {
    const res = await api.request('POST', '/api/auth/register', { body: registerBody({ username }) });
    expect(res.status).toBe(422);
    expect(res.body.detail[0].loc).toContain('username');
  });

  test('refuses a duplicate username in another case (409)', async () => {
    const body = registerBody();
    expect((await api.request('POST', '/api/auth/register', { body })).status).toBe(201);
    const again = registerBody({ username: body.username.toUpperCase() });
    const res = await api.request('POST', '/api/auth/register', { body: again });
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/username/);
  });

  test('refuses a username that is one with another to the database, however JavaScript lowers it (409 on the username)', async () => {
    const body = registerBody({ username: greek() });
    expect((await api.request('POST', '/api/auth/register', { body })).status).toBe(201);
    const res = await api.request('POST', '/api/auth/register', {
      body: registerBody({ username: body.username.toUpperCase() }),
    });
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/username/);
  });

  test('refuses a duplicate email in another case (409)', async () => {
    const body = registerBody();
    await api.request('POST', '/api/auth/register', { body });
    const res = await api.request('POST', '/api/auth/register', {
      body: registerBody({ email: body.email.toUpperCase() }),
    });
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/email/);
  });

  test('refuses an invalid email (422), as Django does', async () => {
    for (const email of [
      'not-an-email',
      'x@example',
      'a..b@example.com',
      '用户@example.com',
      'x@exa_mple.com',
    ]) {
      const res = await api.request('POST', '/api/auth/register', { body: registerBody({ email }) });
      expect({ email, status: res.status }).toEqual({ email, status: 422 });
      expect(res.body.detail).toEqual([
        { loc: ['body', 'email'], msg: 'Enter a valid email address.', type: 'value_error' },
      ]);
    }
  });

  test('takes an email whose domain is in another script, storing the domain lower-cased, as Django does', async () => {
    const tag = Date.now().toString(36);
    const res = await api.request('POST', '/api/auth/register', {
      body: registerBody({ email: `Zoe.${tag}@EXÄMPLE.com` }),
    });
    expect(res.status).toBe(201);
    expect(res.body.email).toBe(`Zoe.${tag}@exämple.com`);
    // The same address in other letters is the same address on every backend.
    const again = await api.request('POST', '/api/auth/register', {
      body: registerBody({ email: `zoe.${tag}@exÄmple.COM` }),
    });
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/email/);
    // Lower-cased, İ is two characters: a domain of them can outgrow the column (it was a 500).
    const growing = `${'a'.repeat(200)}@${Array(5).fill('İİİİİ').join('.')}.com`;
    const long = await api.request('POST', '/api/auth/register', { body: registerBody({ email: growing }) });
    expect(long.status).toBe(422);
    expect(long.body.detail).toEqual([
      { loc: ['body', 'email'], msg: 'Must be at most 254 characters.', type: 'value_error' },
    ]);
    for (const email of [`li.${tag}@例子.中国`, `x.${tag}@[127.0.0.1]`, `x.${tag}@localhost`]) {
      const taken = await api.request('POST', '/api/auth/register', { body: registerBody({ email }) });
      expect({ email, status: taken.status }).toEqual({ email, status: 201 });
    }
  });

  describe('password rules: one 422 message per rule broken', () => {
    test.each([
      ['shorter than 12 characters', 'Ab1!xyzuvw', /at least 12/],
      ['without an upper-case letter', 'abcdefgh1!xyz', /upper-case/],
      ['without a lower-case letter', 'ABCDEFGH1!XYZ', /lower-case/],
      ['without a digit', 'Abcdefghi!xyz', /digit/],
      ['without a special character', 'Abcdefghi1xyz', /special/],
    ])('refuses a password %s', async (_, password, message) => {
      const res = await api.request('POST', '/api/auth/register', { body: registerBody({ password }) });
      expect(res.status).toBe(422);
      const messages = res.body.detail.map((d: { msg: string }) => d.msg);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(message);
      expect(res.body.detail[0].loc).toEqual(['body', 'password']);
    });

    test('refuses a password containing the username in any case', async () => {
      const username = uniqueUsername('Max');
      const res = await api.request('POST', '/api/auth/register', {
        body: registerBody({ username, password: `X1!${username.toUpperCase()}` }),
      });
      expect(res.status).toBe(422);
      expect(res.body.detail.map((d: { msg: string }) => d.msg).join()).toMatch(/username/);
    });

    test('refuses a password containing the username in capitals, a final Σ included', async () => {
      const username = greek();
      const res = await api.request('POST', '/api/auth/register', {
        body: registerBody({ username, password: `X1!a${username.toUpperCase()}` }),
      });
      expect(res.status).toBe(422);
      expect(res.body.detail.map((d: { msg: string }) => d.msg).join()).toMatch(/username/);
    });

    test('lists every broken rule at once', async () => {
      const res = await api.request('POST', '/api/auth/register', {
        body: registerBody({ password: 'abc' }),
      });
      expect(res.status).toBe(422);
      expect(res.body.detail).toHaveLength(4);
    });
  });

  test('refuses a missing field with 422 naming it', async () => {
    const res = await api.request('POST', '/api/auth/register', { body: { username: 'x', email: 'x@y.io' } });
    expect(res.status).toBe(422);
    expect(JSON.stringify(res.body.detail)).toContain('password');
  });

  test('answers a malformed JSON body with 400, not 500', async () => {
    const res = await api.request('POST', '/api/auth/register', { raw: '{"username": ' });
    expect(res.status).toBe(400);
    expect(typeof res.body.detail).toBe('string');
  });
});

describe('usernames in Unicode', () => {
  /** The same characters in their full-width forms (U+FF01–FF5E), which NFKC maps back. */
  const fullWidth = (text: string) =>
    [...text].map((c) => String.fromCodePoint((c.codePointAt(0) as number) + 0xfee0)).join('');
  const register = (username: string) =>
    api.request('POST', '/api/auth/register', { body: registerBody({ username }) });
  const login = (username: string) =>
    api.request('POST', '/api/token/pair', { body: { username, password: STRONG_PASSWORD } });

  test('are stored in NFKC form, as Django does: look-alike spellings are one user, and log in as it', async () => {
    const name = uniqueUsername('wide').toUpperCase();
    const created = await register(fullWidth(name));
    expect(created.status).toBe(201);
    expect(created.body.username).toBe(name);
    // Taken in every spelling, any case.
    for (const spelling of [name, name.toLowerCase(), fullWidth(name.toLowerCase())])
      expect((await register(spelling)).status).toBe(409);
    for (const spelling of [name, fullWidth(name.toLowerCase())]) {
      const res = await login(spelling);
      expect(res.status).toBe(200);
      expect(res.body.username).toBe(name);
    }

    // An accent typed as a separate mark is the accented letter.
    const jose = uniqueUsername('jose');
    const decomposed = await register(`${jose}e\u0301`);
    expect(decomposed.status).toBe(201);
    expect(decomposed.body.username).toBe(`${jose}\u00e9`);
    expect((await register(`${jose}\u00e9`)).status).toBe(409);
    expect((await login(`${jose}e\u0301`)).status).toBe(200);
  });

  test('a user stored before names were normalized still logs in with the name as stored', async () => {
    const name = `${uniqueUsername('old')}e\u0301`;
    await server.resources.database.db.insert(users).values({
      username: name,
      email: `${uniqueUsername('old')}@example.com`,
      password: await Bun.password.hash(STRONG_PASSWORD, {
        algorithm: 'argon2id',
        memoryCost: 1024,
        timeCost: 1,
      }),
    });
    const res = await login(name);
    expect(res.status).toBe(200);
    expect(res.body.username).toBe(name);
  });
});

describe('POST /api/token/pair', () => {
  test('returns username, access and refresh tokens with the SPEC claims', async () => {
    const user = await api.register();
    const res = await api.request('POST', '/api/token/pair', {
      body: { username: user.username, password: STRONG_PASSWORD },
    });
    expect(res.status).toBe(200);
    expect(res.body.username).toBe(user.username);
    const access = decode(res.body.access);
    const refresh = decode(res.body.refresh);
    expect(access).toMatchObject({ sub: user.id, type: 'access' });
    expect(refresh).toMatchObject({ sub: user.id, type: 'refresh' });
    for (const claims of [access, refresh])
      expect(Object.keys(claims).sort()).toEqual(['exp', 'iat', 'jti', 'sub', 'type']);
    expect(access.exp - access.iat).toBe(15 * 60);
    expect(refresh.exp - refresh.iat).toBe(7 * 86400);
    expect(JSON.parse(Buffer.from(res.body.access.split('.')[0], 'base64url').toString()).alg).toBe('HS256');
  });

  test('logs in with the username in another case', async () => {
    const user = await api.register();
    const res = await api.request('POST', '/api/token/pair', {
      body: { username: user.username.toUpperCase(), password: STRONG_PASSWORD },
    });
    expect(res.status).toBe(200);
  });

  test('refuses a wrong password and an unknown user with the same 401', async () => {
    const user = await api.register();
    const wrong = await api.request('POST', '/api/token/pair', {
      body: { username: user.username, password: 'Nope-nope-123!' },
    });
    const unknown = await api.request('POST', '/api/token/pair', {
      body: { username: uniqueUsername('ghost'), password: STRONG_PASSWORD },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body.detail).toBe(unknown.body.detail);
  });

  test('refuses an inactive user even with the right password', async () => {
    const user = await api.register();
    await server.resources.database.db.update(users).set({ isActive: false }).where(eq(users.id, user.id));
    const res = await api.request('POST', '/api/token/pair', {
      body: { username: user.username, password: STRONG_PASSWORD },
    });
    expect(res.status).toBe(401);
  });

  describe('lockout', () => {
    test('locks (username, IP) after the configured failures: 401s, then 429 with Retry-After even for the right password', async () => {
      const user = await api.register();
      for (let i = 0; i < 3; i++) {
        const res = await api.request('POST', '/api/token/pair', {
          body: { username: user.username, password: 'Wrong-pass-123!' },
        });
        expect(res.status).toBe(401);
      }
      const locked = await api.request('POST', '/api/token/pair', {
        body: { username: user.username, password: STRONG_PASSWORD },
      });
      expect(locked.status).toBe(429);
      expect(locked.body.code).toBe('account_locked');
      const retryAfter = Number(locked.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      // In words too, for a person reading it (the web app shows the detail).
      expect(locked.body.detail).toBe(`Too many failed login attempts. Try again in ${retryAfter} s.`);
    });

    test('counts the failures of every spelling the database reads as the same username', async () => {
      const user = registerBody({ username: greek(), email: `${uniqueUsername()}@example.com` });
      expect((await api.request('POST', '/api/auth/register', { body: user })).status).toBe(201);
      const spellings = [user.username, user.username.toUpperCase(), user.username];
      for (const username of spellings) {
        const res = await api.request('POST', '/api/token/pair', {
          body: { username, password: 'Wrong-pass-123!' },
        });
        expect(res.status).toBe(401);
      }
      const locked = await api.request('POST', '/api/token/pair', {
        body: { username: user.username.toUpperCase(), password: STRONG_PASSWORD },
      });
      expect(locked.status).toBe(429);
    });

    test('a successful login resets the failure count', async () => {
      const user = await api.register();
      const fail = () =>
        api.request('POST', '/api/token/pair', {
          body: { username: user.username, password: 'Wrong-pass-123!' },
        });
      await fail();
      await fail();
      await api.login(user.username);
      await fail();
      await fail();
      expect(
        (
          await api.request('POST', '/api/token/pair', {
            body: { username: user.username, password: STRONG_PASSWORD },
          })
        ).status,
      ).toBe(200);
    });

    test('locks per username: another account from the same IP is unaffected', async () => {
      const victim = await api.register();
      const other = await api.register();
      for (let i = 0; i < 4; i++)
        await api.request('POST', '/api/token/pair', {
          body: { username: victim.username, password: 'Wrong-pass-123!' },
        });
      expect(
        (
          await api.request('POST', '/api/token/pair', {
            body: { username: other.username, password: STRONG_PASSWORD },
          })
        ).status,
      ).toBe(200);
    });
  });
});

describe('POST /api/token/refresh', () => {
  test('rotates: returns a new pair and refuses the old refresh token afterwards', async () => {
    const user = await api.register();
    const tokens = await api.login(user.username);
    const res = await api.request('POST', '/api/token/refresh', { body: { refresh: tokens.refresh } });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['access', 'refresh']);
    expect(res.body.refresh).not.toBe(tokens.refresh);
    expect((await api.request('GET', '/api/auth/me', { token: res.body.access })).status).toBe(200);

    const reuse = await api.request('POST', '/api/token/refresh', { body: { refresh: tokens.refresh } });
    expect(reuse.status).toBe(401);
    expect(reuse.body.code).toBe('token_not_valid');
  });

  test('lets only one of two concurrent refreshes with the same token succeed', async () => {
    const user = await api.register();
    const tokens = await api.login(user.username);
    const results = await Promise.all(
      [1, 2, 3].map(() => api.request('POST', '/api/token/refresh', { body: { refresh: tokens.refresh } })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 401, 401]);
  });

  test('refuses an access token where a refresh token is expected', async () => {
    const user = await api.register();
    const tokens = await api.login(user.username);
    const res = await api.request('POST', '/api/token/refresh', { body: { refresh: tokens.access } });
    expect(res.status).toBe(401);
  });

  test('refuses garbage with 401 and a missing field with 422', async () => {
    expect((await api.request('POST', '/api/token/refresh', { body: { refresh: 'not.a.jwt' } })).status).toBe(
      401,
    );
    expect((await api.request('POST', '/api/token/refresh', { body: {} })).status).toBe(422);
  });
});

describe('GET /api/auth/me', () => {
  test('returns the user for a valid access token', async () => {
    const user = await api.register();
    const tokens = await api.login(user.username);
    const res = await api.request('GET', '/api/auth/me', { token: tokens.access });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: user.id,
      username: user.username,
      email: user.email,
      date_joined: expect.any(String),
    });
  });

  test('refuses no token, a malformed header, garbage and a refresh token with 401', async () => {
    const user = await api.register();
    const tokens = await api.login(user.username);
    expect((await api.request('GET', '/api/auth/me')).status).toBe(401);
    expect(
      (await api.request('GET', '/api/auth/me', { headers: { authorization: `Token ${tokens.access}` } }))
        .status,
    ).toBe(401);
    expect((await api.request('GET', '/api/auth/me', { token: 'garbage' })).status).toBe(401);
    const refresh = await api.request('GET', '/api/auth/me', { token: tokens.refresh });
    expect(refresh.status).toBe(401);
    expect(refresh.body.code).toBe('token_not_valid');
  });

  test('refuses the token of a user made inactive after login', async () => {
    const user = await api.register();
    const tokens = await api.login(user.username);
    await server.resources.database.db.update(users).set({ isActive: false }).where(eq(users.id, user.id));
    expect((await api.request('GET', '/api/auth/me', { token: tokens.access })).status).toBe(401);
  });
});

describe('POST /api/auth/logout', () => {
  test('blacklists the access token and the refresh token', async () => {
    const user = await api.register();
    const tokens = await api.login(user.username);
    const res = await api.request('POST', '/api/auth/logout', {
      token: tokens.access,
      body: { refresh: tokens.refresh },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ detail: 'Successfully logged out' });
    expect((await api.request('GET', '/api/auth/me', { token: tokens.access })).status).toBe(401);
    expect(
      (await api.request('POST', '/api/token/refresh', { body: { refresh: tokens.refresh } })).status,
    ).toBe(401);
  });

  test('works without a body and blacklists only the access token', async () => {
    const user = await api.register();
    const tokens = await api.login(user.username);
    expect((await api.request('POST', '/api/auth/logout', { token: tokens.access })).status).toBe(200);
    expect((await api.request('GET', '/api/auth/me', { token: tokens.access })).status).toBe(401);
    expect(
      (await api.request('POST', '/api/token/refresh', { body: { refresh: tokens.refresh } })).status,
    ).toBe(200);
  });

  test('keeps blacklist entries only as long as the token lives', async () => {
    const user = await api.register();
    const tokens = await api.login(user.username);
    await api.request('POST', '/api/auth/logout', { token: tokens.access });
    const { jti, exp } = decode(tokens.access);
    const ttl = await server.resources.store.ttl(`blacklist:${jti}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(exp * 1000 - Date.now() + 1000);
  });

  test('requires a bearer token', async () => {
    expect((await api.request('POST', '/api/auth/logout', { body: {} })).status).toBe(401);
  });

  test("closes the sockets that token opened (4001), while its reply goes on; the same user's other token keeps its socket", async () => {
    const me = await api.signUp();
    const device = await api.login(me.user.username);
    const opened = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const other = await connectAuthenticated(server.wsUrl, me.conversationId, device.access);
    opened.send({ type: 'chat.message', content: drip('log me out mid-reply', 50) });
    await opened.next((f) => f.type === 'chat.stream');
    expect((await api.request('POST', '/api/auth/logout', { token: me.access })).status).toBe(200);
    expect((await opened.closed).code).toBe(4001);
    expect(opened.frames.at(-1)).toMatchObject({ type: 'chat.error', code: 'AUTH_FAILED' });
    // The other device follows the reply to its end, and it is stored whole.
    const done = await other.next((f) => f.type === 'chat.stream' && f.done === true, 15_000);
    expect(done.status).toBeUndefined();
    const stored = await api.request('GET', `/api/conversations/${me.conversationId}/messages`, {
      token: device.access,
    });
    expect(stored.body.items.at(-1)).toMatchObject({ status: 'complete', content: DRIP_ANSWER });
    other.send({ type: 'chat.message', content: 'still signed in' });
    expect((await other.reply()).final.done).toBe(true);
    other.close();
  });

  test("refuses someone else's refresh token", async () => {
    const a = await api.login((await api.register()).username);
    const b = await api.login((await api.register()).username);
    const res = await api.request('POST', '/api/auth/logout', {
      token: a.access,
      body: { refresh: b.refresh },
    });
    expect(res.status).toBe(401);
    expect((await api.request('POST', '/api/token/refresh', { body: { refresh: b.refresh } })).status).toBe(
      200,
    );
  });
});
