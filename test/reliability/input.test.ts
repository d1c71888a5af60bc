import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Client, createClient, STRONG_PASSWORD, uniqueUsername } from '../support/client';
import { startServer, type TestServer } from '../support/server';
import { signUpStaff } from '../support/staff';
import { connect, connectAuthenticated } from '../support/ws';

/**
 * SPEC §2: no input is a 500. Every route, every text field, every path parameter
 * and query parameter gets the strings that broke the seed and its first port: NUL,
 * other control characters, lone surrogates, broken percent-encoding, overlong text.
 */

let server: TestServer;
let api: Client;
let me: Awaited<ReturnType<Client['signUp']>>;
/** An answer in another conversation of `me`, for the feedback route. */
let answer: { conversationId: string; id: string };
/** A staff user's access token, for the admin routes. */
let staff: string;

beforeAll(async () => {
  server = await startServer({ CHAT_RATE_LIMIT: '1000', HTTP_MAX_BODY_BYTES: '65536' });
  api = createClient(server.url);
  me = await api.signUp();
  const other = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
  const ws = await connectAuthenticated(server.wsUrl, other, me.access);
  ws.send({ type: 'chat.message', content: 'hello' });
  answer = { conversationId: other, id: (await ws.reply()).final.message_id };
  ws.close();
  staff = (await signUpStaff(server.resources.database.db, api)).access;
});
afterAll(() => server.stop());

// What the database cannot store: NUL, and surrogates that pair with nothing.
const UNSTORABLE = ['\u0000', 'a\u0000b', '\uD800', 'x\uDC00y', '\uDFFF\uD800'];
// What it can store, however odd: these must never be a 5xx either.
/**
 * A UUID written as JSON Schema's `uuid` format also takes it, with a `urn:uuid:` prefix,
 * which PostgreSQL cannot read (a 500 once), and in spellings PostgreSQL reads.
 */
const UUID_SPELLINGS = (id: string) => [
  `urn:uuid:${id}`,
  `URN:UUID:${id.toUpperCase()}`,
  `{${id}}`,
  id.replaceAll('-', ''),
];

const ODD = [
  ...UUID_SPELLINGS('01a23d94-06a0-7181-867a-02ff02b2f035'),
  '\u0001\u001f\u007f',
  '\u202E\u200B\uFEFF',
  '%ZZ',
  '%',
  '%00',
  '😀'.repeat(300),
  'x'.repeat(100_000),
];

interface Field {
  method: string;
  path: () => string;
  /** The text fields of the body, each replaced in turn. */
  fields: string[];
  /** A valid body (read once the test user exists). */
  body: () => Record<string, unknown>;
  /** `staff`: a staff user's token; true: the test user's. */
  token?: boolean | 'staff';
}

const tokenFor = (route: { token?: boolean | 'staff' }) =>
  route.token === 'staff' ? staff : route.token ? me.access : undefined;

const username = uniqueUsername('fuzz');
const BODY_ROUTES: Record<string, Field> = {
  register: {
    method: 'POST',
    path: () => '/api/auth/register',
    fields: ['username', 'email', 'password'],
    body: () => ({ username, email: `${username}@example.com`, password: STRONG_PASSWORD }),
  },
  login: {
    method: 'POST',
    path: () => '/api/token/pair',
    fields: ['username', 'password'],
    body: () => ({ username: me.user.username, password: STRONG_PASSWORD }),
  },
  refresh: {
    method: 'POST',
    path: () => '/api/token/refresh',
    fields: ['refresh'],
    body: () => ({ refresh: me.refresh }),
  },
  logout: {
    method: 'POST',
    path: () => '/api/auth/logout',
    fields: ['refresh'],
    body: () => ({ refresh: 'x' }),
    token: true,
  },
  password: {
    method: 'POST',
    path: () => '/api/auth/password',
    fields: ['current_password', 'new_password'],
    // Never the right current password: the fuzz user keeps theirs.
    body: () => ({ current_password: 'Not-the-password-1!', new_password: 'Another-Strong-Pass-7!' }),
    token: true,
  },
  deleteAccount: {
    method: 'DELETE',
    path: () => '/api/auth/me',
    fields: ['password'],
    // Never the right password: the fuzz user is not deleted.
    body: () => ({ password: 'Not-the-password-1!' }),
    token: true,
  },
  create: {
    method: 'POST',
    path: () => '/api/conversations/',
    fields: ['title', 'model', 'system_prompt'],
    body: () => ({ title: 'ok' }),
    token: true,
  },
  rename: {
    method: 'PATCH',
    path: () => `/api/conversations/${me.conversationId}`,
    fields: ['title', 'model', 'system_prompt', 'current_message_id'],
    body: () => ({ title: 'ok' }),
    token: true,
  },
  feedback: {
    method: 'PUT',
    path: () => `/api/conversations/${answer.conversationId}/messages/${answer.id}/feedback`,
    fields: ['comment'],
    body: () => ({ rating: 'up' }),
    token: true,
  },
  admin: {
    method: 'PATCH',
    path: () => `/api/admin/users/${me.user.id}`,
    fields: ['daily_token_quota', 'daily_message_quota', 'is_active', 'is_staff'],
    body: () => ({ daily_message_quota: null }),
    token: 'staff',
  },
};

describe('text the database cannot store', () => {
  for (const [name, route] of Object.entries(BODY_ROUTES))
    for (const field of route.fields)
      test(`${name}: "${field}" with NUL or a lone surrogate is ${name === 'login' ? 'the wrong-password 401' : 'a 422 naming the field'}`, async () => {
        for (const bad of UNSTORABLE) {
          const body = { ...route.body(), [field]: bad };
          const res = await api.request(route.method, route.path(), {
            body,
            token: tokenFor(route),
          });
          if (name === 'login') {
            expect(res.status).toBe(401);
            expect(res.body).toEqual({
              detail: 'No active account found with the given credentials',
              code: 'authentication_failed',
            });
          } else {
            expect(res.status).toBe(422);
            expect(res.body.detail[0].loc).toEqual(['body', field]);
          }
        }
      });

  test('nothing was stored: the conversation kept its title and no user was registered', async () => {
    const conversation = await api.request('GET', `/api/conversations/${me.conversationId}`, {
      token: me.access,
    });
    expect(conversation.body).toMatchObject({ title: 'New conversation', model: null, system_prompt: null });
    const list = await api.request('GET', '/api/conversations/', { token: me.access });
    expect(list.body.count).toBe(2);
    const answered = await api.request('GET', `/api/conversations/${answer.conversationId}/messages`, {
      token: me.access,
    });
    expect(answered.body.items[1].feedback).toBeNull();
    const login = await api.request('POST', '/api/token/pair', {
      body: { username, password: STRONG_PASSWORD },
    });
    expect(login.status).toBe(401);
  });
});

describe('every route, every field, hostile text: never a 5xx', () => {
  test('the routes below are every route the app has (a new route must join this test)', () => {
    const routes = server.app.routes.map((r) => `${r.method} ${r.path}`);
    const covered = [
      ...Object.values(BODY_ROUTES).map(
        (r) => `${r.method} ${r.path().replace(me.conversationId, ':id').replace(me.user.id, ':id')}`,
      ),
      ...QUERY_ROUTES.map(([path]) => `GET ${path}`),
      ...PATH_ROUTES.map(([method, path]) => `${method} ${path}`),
    ];
    const uncovered = routes.filter(
      (route) => !covered.includes(route) && !covered.includes(route.replace(/\/$/, '')) && !IGNORED(route),
    );
    expect(uncovered).toEqual([]);
  });

  test('body fields', async () => {
    const statuses = new Set<number>();
    const serverErrors: string[] = [];
    for (const route of Object.values(BODY_ROUTES))
      for (const field of route.fields)
        for (const bad of [...UNSTORABLE, ...ODD, 12, null, [], {}]) {
          const res = await api.request(route.method, route.path(), {
            body: { ...route.body(), [field]: bad },
            token: tokenFor(route),
          });
          statuses.add(res.status);
          if (res.status >= 500)
            serverErrors.push(`${route.path()} ${field}=${JSON.stringify(bad).slice(0, 40)} → ${res.status}`);
        }
    expect(serverErrors).toEqual([]);
    expect(statuses).toContain(422);
  }, 60_000);

  test('path and query parameters, including broken percent-encoding', async () => {
    const ids = [
      '%ZZ',
      '%',
      '%E0%A4%A',
      '%00',
      '%uD800',
      '%ED%A0%80',
      'x'.repeat(5000),
      '..%2F..',
      `${me.conversationId}%00`,
      ...UUID_SPELLINGS(me.conversationId).map(encodeURIComponent),
    ];
    const unexpected: string[] = [];
    for (const [method, template] of PATH_ROUTES)
      for (const id of ids) {
        const path = template
          .replace(':id', id)
          .replace(':conversationId', id)
          .replace(':message_id', id)
          .replace(':file', id);
        const res = await api.request(method, path, {
          // Anyone not staff is refused an admin route before its path is read (403).
          token: template.startsWith('/api/admin') ? staff : me.access,
          body: method === 'PATCH' ? {} : method === 'PUT' ? { rating: 'up' } : undefined,
        });
        // A plain GET of the WebSocket route is told to upgrade (426).
        if (![400, 404, 422, ...(template.startsWith('/ws/') ? [426] : [])].includes(res.status))
          unexpected.push(`${method} ${path.slice(0, 80)} → ${res.status}`);
      }
    for (const query of ['limit=%ZZ', 'offset=%', 'limit=%00', 'limit=-1', `limit=${'9'.repeat(400)}`]) {
      const res = await api.request('GET', `/api/conversations/?${query}`, { token: me.access });
      expect([400, 422]).toContain(res.status);
    }
    for (const [path, name] of QUERY_ROUTES)
      for (const value of [
        ...ids,
        '%E2%80%AE%E2%80%8B',
        encodeURIComponent('😀'.repeat(60)),
        '%25%5F%5C',
        encodeURIComponent('a-b (c) [d] {e} | \\ ^$ ?*+.'),
      ])
        for (const token of [me.access, staff]) {
          const res = await api.request('GET', `${path}?${name}=${value}`, { token });
          if (res.status >= 500) unexpected.push(`GET ${path}?${name}=${value.slice(0, 40)} → ${res.status}`);
        }
    expect(unexpected).toEqual([]);
  });

  test('the WebSocket path and its frames', async () => {
    for (const id of ['%ZZ', '%']) {
      const res = await fetch(`${server.url}/ws/chat/${id}/`);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ detail: 'Malformed URL' });
    }
    const nul = await fetch(`${server.url}/ws/chat/%00/`);
    expect(nul.status).toBe(422);
    // An id that is no conversation: the socket opens and auth answers NO_CONVERSATION.
    for (const id of ['x'.repeat(2000), '%F0%9F%98%80', 'not-a-uuid']) {
      const ws = await connect(`${server.wsUrl}/ws/chat/${id}/`);
      ws.send({ type: 'auth', token: me.access });
      expect((await ws.next()).code).toBe('NO_CONVERSATION');
      expect((await ws.closed).code).toBe(4004);
    }
    for (const token of UNSTORABLE) {
      const ws = await connect(`${server.wsUrl}/ws/chat/${me.conversationId}/`);
      ws.send({ type: 'auth', token });
      expect((await ws.next()).code).toBe('AUTH_FAILED');
      expect((await ws.closed).code).toBe(4001);
    }
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    for (const content of ['a\u0000b', 'x\uD800y', '\u0001\u0002ok']) {
      ws.send({ type: 'chat.message', content });
      expect((await ws.reply()).final.done).toBe(true);
    }
    const stored = await api.request('GET', `/api/conversations/${me.conversationId}/messages`, {
      token: me.access,
    });
    const users = stored.body.items.filter((m: { role: string }) => m.role === 'user');
    expect(users.map((m: { content: string }) => m.content)).toEqual(['ab', 'x\uFFFDy', 'ok']);
    ws.close();
  });

  test('the process is still healthy', async () => {
    expect((await api.request('GET', '/api/health/')).status).toBe(200);
    expect(server.logs.filter((l) => l.includes('"unhandled error"'))).toEqual([]);
  });
});

describe('length limits count characters, as SPEC does, not UTF-16 units', () => {
  // Each emoji is one character and two UTF-16 units.
  const emoji = (n: number) => '😀'.repeat(n);

  test('a title, system prompt, feedback comment and username at their limit in emoji are taken whole; one more is 422 saying the limit', async () => {
    const conversations = `/api/conversations/${me.conversationId}`;
    const feedback = `/api/conversations/${answer.conversationId}/messages/${answer.id}/feedback`;
    const cases: [
      method: string,
      path: string,
      field: string,
      max: number,
      body: (text: string) => object,
    ][] = [
      ['POST', '/api/conversations/', 'title', 255, (title) => ({ title })],
      ['PATCH', conversations, 'system_prompt', 4000, (system_prompt) => ({ system_prompt })],
      ['PUT', feedback, 'comment', 2000, (comment) => ({ rating: 'up', comment })],
    ];
    for (const [method, path, field, max, body] of cases) {
      const taken = await api.request(method, path, { token: me.access, body: body(emoji(max)) });
      expect({ field, status: taken.status }).toEqual({ field, status: method === 'POST' ? 201 : 200 });
      const stored = field === 'comment' ? taken.body.feedback.comment : taken.body[field];
      expect(stored).toBe(emoji(max));
      const refused = await api.request(method, path, { token: me.access, body: body(emoji(max + 1)) });
      expect(refused.status).toBe(422);
      expect(refused.body.detail).toEqual([
        { loc: ['body', field], msg: expect.stringContaining(`${max} characters`), type: 'value_error' },
      ]);
    }
    const unique = uniqueUsername('');
    // A letter outside the Basic Multilingual Plane that NFKC leaves as it is (usernames
    // are stored normalized: a mathematical 𝒜 would become A).
    const username = '𠀀'.repeat(150 - unique.length) + unique;
    const registered = await api.request('POST', '/api/auth/register', {
      body: { username, email: `${crypto.randomUUID()}@example.com`, password: STRONG_PASSWORD },
    });
    expect(registered.status).toBe(201);
    expect(registered.body.username).toBe(username);
    const login = await api.request('POST', '/api/token/pair', {
      body: { username, password: STRONG_PASSWORD },
    });
    expect(login.status).toBe(200);
    const tooLong = await api.request('POST', '/api/auth/register', {
      body: {
        username: `${username}x`,
        email: `${crypto.randomUUID()}@example.com`,
        password: STRONG_PASSWORD,
      },
    });
    expect(tooLong.status).toBe(422);
    expect(tooLong.body.detail[0].loc).toEqual(['body', 'username']);
  });
});

describe('request bodies over HTTP_MAX_BODY_BYTES', () => {
  const limit = 65536;
  test('a declared Content-Length over the limit is a 413 with the JSON shape, before the body is read', async () => {
    const res = await api.request('POST', '/api/auth/register', { raw: `"${'a'.repeat(limit)}"` });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({
      detail: `Request body is larger than ${limit} bytes`,
      code: 'payload_too_large',
    });
  });

  test('a chunked body is cut off at the limit with the same 413', async () => {
    let sent = 0;
    const chunk = new TextEncoder().encode('a'.repeat(16 * 1024));
    const res = await fetch(`${server.url}/api/conversations/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${me.access}` },
      body: new ReadableStream({
        pull(controller) {
          // Ten times the limit on offer; the server stops reading long before.
          if (sent > limit * 10) controller.close();
          else {
            sent += chunk.byteLength;
            controller.enqueue(chunk);
          }
        },
      }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      detail: `Request body is larger than ${limit} bytes`,
      code: 'payload_too_large',
    });
  });

  test('a body at the limit is read and validated as usual', async () => {
    const title = 'a'.repeat(limit - 20);
    const res = await api.request('POST', '/api/conversations/', {
      raw: JSON.stringify({ title }),
      token: me.access,
    });
    expect(res.status).toBe(422);
    expect(res.body.detail[0].loc).toEqual(['body', 'title']);
  });
});

const PATH_ROUTES: [string, string][] = [
  ['GET', '/api/conversations/:id'],
  ['PATCH', '/api/conversations/:id'],
  ['DELETE', '/api/conversations/:id'],
  ['GET', '/api/conversations/:id/messages'],
  ['POST', '/api/conversations/:id/stop'],
  ['GET', '/api/conversations/:id/export'],
  ['PUT', '/api/conversations/:id/messages/:message_id/feedback'],
  ['PATCH', '/api/admin/users/:id'],
  ['GET', '/api/chat/:id/stream'],
  ['GET', '/:file'],
  ['GET', '/ws/chat/:conversationId'],
];

/** Routes whose input is a query parameter, and that parameter. */
const QUERY_ROUTES: [string, string][] = [
  ['/api/conversations/search', 'q'],
  ['/api/usage', 'days'],
  ['/api/admin/users', 'q'],
  ['/api/admin/usage', 'days'],
];

// Routes with neither a body nor a path parameter: covered by the query and health tests above.
const IGNORED = (route: string) =>
  [
    'GET /api/health',
    'GET /api/auth/me',
    'GET /api/conversations/',
    'GET /api/conversations',
    'GET /api/openapi.json',
    'GET /api/models',
    'GET /metrics',
    'GET /api/docs',
    'GET /',
    // Its body is the AI SDK's, with the text nested in messages: test/modules/chat/ai-sdk.test.ts.
    'POST /api/chat',
  ].some((r) => route === r || route === `${r}/`) ||
  route.startsWith('GET /api/docs') ||
  route.startsWith('OPTIONS ');
