import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { openDatabase } from '../src/db/client';
import { RedisStore } from '../src/store/redis';
import { type Client, createClient } from './support/client';
import { startServer, type TestServer } from './support/server';
import { until } from './support/wait';

let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer({ CORS_ALLOWED_ORIGINS: 'http://app.example.com' });
  api = createClient(server.url);
});
afterAll(() => server.stop());

/** A TCP server that accepts connections and never answers: a hung dependency. */
const blackHole = () =>
  Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data: () => {}, open: () => {} } });

describe('GET /api/health/', () => {
  test('reports every dependency healthy, with and without the trailing slash', async () => {
    for (const path of ['/api/health/', '/api/health']) {
      const res = await api.request('GET', path);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('healthy');
      expect(res.body.ai).toBe('configured');
      expect(['ok', 'embedded']).toContain(res.body.database);
      expect(['ok', 'embedded']).toContain(res.body.redis);
    }
  });

  test('answers 503 with redis "error" when the store is unreachable', async () => {
    const store = new RedisStore('redis://127.0.0.1:1', 'x:');
    const down = await startServer({}, { store });
    try {
      const res = await createClient(down.url).request('GET', '/api/health/');
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ status: 'unhealthy', redis: 'error' });
      expect(res.body.database).not.toBe('error');
    } finally {
      await down.stop();
      await store.close();
    }
  });

  test('answers 503 with database "error" when the database is unreachable', async () => {
    const database = await openDatabase({ kind: 'postgres', url: 'postgres://nobody@127.0.0.1:1/none' });
    const down = await startServer({}, { database });
    try {
      const res = await createClient(down.url).request('GET', '/api/health/');
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ status: 'unhealthy', database: 'error' });
    } finally {
      await down.stop();
      await database.close();
    }
  });

  test('answers within 2 s when both dependencies hang', async () => {
    const hole = blackHole();
    const database = await openDatabase({ kind: 'postgres', url: `postgres://x@127.0.0.1:${hole.port}/x` });
    const store = new RedisStore(`redis://127.0.0.1:${hole.port}`, 'x:');
    const down = await startServer({}, { database, store });
    try {
      const started = performance.now();
      const res = await createClient(down.url).request('GET', '/api/health/');
      expect(performance.now() - started).toBeLessThan(2000);
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ database: 'error', redis: 'error' });
    } finally {
      await down.stop();
      await Promise.allSettled([database.close(), store.close()]);
      hole.stop(true);
    }
  });

  test('reports the offline model as "offline"', async () => {
    const offline = await startServer({}, { offline: true });
    try {
      expect((await createClient(offline.url).request('GET', '/api/health/')).body.ai).toBe('offline');
    } finally {
      await offline.stop();
    }
  });
});

describe('dependency outages over REST', () => {
  test('answers 503 "Service temporarily unavailable" when the database is unreachable', async () => {
    const database = await openDatabase({ kind: 'postgres', url: 'postgres://nobody@127.0.0.1:1/none' });
    const down = await startServer({}, { database });
    try {
      const res = await createClient(down.url).request('POST', '/api/auth/register', {
        body: { username: 'someone', email: 'someone@example.com', password: 'Correct-Horse-9-Battery' },
      });
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ detail: 'Service temporarily unavailable' });
    } finally {
      await down.stop();
      await database.close();
    }
  });

  test('fails closed with 503 on login, token checks, refresh and logout when the store is unreachable', async () => {
    // Tokens come from a healthy server sharing the same database.
    const user = await api.register();
    const tokens = await api.login(user.username);
    const store = new RedisStore('redis://127.0.0.1:1', 'x:');
    const down = await startServer({}, { store, database: server.resources.database });
    const client = createClient(down.url);
    try {
      const login = await client.request('POST', '/api/token/pair', {
        body: { username: user.username, password: user.password },
      });
      expect(login.status).toBe(503);
      expect((await client.request('GET', '/api/auth/me', { token: tokens.access })).status).toBe(503);
      expect(
        (await client.request('POST', '/api/token/refresh', { body: { refresh: tokens.refresh } })).status,
      ).toBe(503);
      expect((await client.request('POST', '/api/auth/logout', { token: tokens.access })).status).toBe(503);
    } finally {
      await down.stop().catch(() => {});
      await store.close();
    }
  });
});

describe('errors', () => {
  test('unknown routes answer 404 with a JSON detail', async () => {
    const res = await api.request('GET', '/api/nope');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ detail: 'Not found' });
  });

  test('a method a path does not take is 405 with Allow, with or without the trailing slash', async () => {
    for (const [method, path, allow] of [
      ['PUT', '/api/conversations/', 'GET, POST, HEAD'],
      ['DELETE', '/api/conversations', 'GET, POST, HEAD'],
      ['POST', '/api/health/', 'GET, HEAD'],
      ['GET', '/api/auth/register', 'POST'],
      ['GET', '/api/conversations/not-an-id/stop/', 'POST'],
      ['POST', '/ws/chat/not-an-id/', 'GET, HEAD'],
    ] as const) {
      const res = await api.request(method, path);
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 405 });
      expect(res.headers.get('allow')).toBe(allow);
      expect(res.body).toEqual({ detail: 'Method not allowed' });
    }
    // A path no route has is still 404, whatever the method; so is one only the web
    // app's catch-all for its files would take.
    for (const [method, path] of [
      ['GET', '/api/conversations/a/b/c'],
      ['DELETE', '/api/conversations/a/b/c'],
      ['POST', '/no-such-file.js'],
    ] as const) {
      const res = await api.request(method, path);
      expect(res.status).toBe(404);
      expect(res.headers.get('allow')).toBeNull();
    }
  });

  test('a malformed JSON body is 400, never 500', async () => {
    for (const raw of ['{', 'null', '[1,', '"unterminated']) {
      const res = await api.request('POST', '/api/token/pair', { raw });
      expect([400, 422]).toContain(res.status);
      expect(res.body.detail).toBeDefined();
    }
  });

  test('a body is read as JSON whatever its Content-Type says, as Django Ninja reads it; an empty one is {}', async () => {
    const me = await api.signUp();
    const path = `/api/conversations/${me.conversationId}`;
    const types = [
      'text/plain',
      'application/x-www-form-urlencoded', // curl -d's default
      'APPLICATION/JSON',
      'application/merge-patch+json',
    ];
    for (const type of types) {
      const res = await fetch(`${server.url}${path}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${me.access}`, 'content-type': type },
        body: JSON.stringify({ title: type }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { title: string }).title).toBe(type);
    }
    // Not JSON: a form's fields are a malformed body, not a change of nothing.
    const form = await fetch(`${server.url}${path}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${me.access}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'title=form',
    });
    expect(form.status).toBe(400);
    expect((await api.request('GET', path, { token: me.access })).body.title).toBe(types.at(-1));
    // The same on the two routes whose body may be left out: a form is not "no body".
    const before = (await api.request('GET', '/api/conversations/', { token: me.access })).body.count;
    for (const route of ['/api/conversations/', '/api/auth/logout']) {
      const res = await fetch(`${server.url}${route}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${me.access}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'title=form&refresh=token',
      });
      expect(res.status).toBe(400);
    }
    const after = await api.request('GET', '/api/conversations/', { token: me.access });
    expect(after.status).toBe(200); // still signed in: the refused logout did nothing
    expect(after.body.count).toBe(before);
    // A JSON value that is not an object is refused whatever the label; text that is
    // not JSON is malformed on a route with a body and ignored on one without.
    const number = await fetch(`${server.url}${path}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${me.access}`, 'content-type': 'text/plain' },
      body: '5',
    });
    expect(number.status).toBe(422);
    const bearer = { authorization: `Bearer ${me.access}` };
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const headers = { ...bearer, 'content-type': type };
      const stop = await fetch(`${server.url}${path}/stop`, { method: 'POST', headers, body: 'now please' });
      expect(stop.status).toBe(200);
    }
    const gone = await fetch(`${server.url}${path}`, {
      method: 'DELETE',
      headers: { ...bearer, 'content-type': 'text/plain' },
      body: 'bye',
    });
    expect(gone.status).toBe(204);
    // Labelled JSON or not, a route that takes no body does not read one.
    const other = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
    const labelled = await fetch(`${server.url}/api/conversations/${other}`, {
      method: 'DELETE',
      headers: { ...bearer, 'content-type': 'application/json' },
      body: '{"confirm": ',
    });
    expect(labelled.status).toBe(204);
    expect((await api.request('GET', path, { token: me.access })).status).toBe(404);
    // A JSON Content-Type with no body: nothing to change, nothing malformed.
    const json = { authorization: `Bearer ${me.access}`, 'content-type': 'application/json' };
    const created = await fetch(`${server.url}/api/conversations/`, { method: 'POST', headers: json });
    expect(created.status).toBe(201);
    const fresh = `/api/conversations/${((await created.json()) as { id: string }).id}`;
    const unchanged = await fetch(`${server.url}${fresh}`, { method: 'PATCH', headers: json });
    expect(unchanged.status).toBe(200);
    const register = await fetch(`${server.url}/api/auth/register`, { method: 'POST', headers: json });
    expect(register.status).toBe(422);
    const loggedOut = await fetch(`${server.url}/api/auth/logout`, { method: 'POST', headers: json });
    expect(loggedOut.status).toBe(200);
  });

  test('a JSON body that is not an object is 422 and changes nothing', async () => {
    const me = await api.signUp();
    const path = `/api/conversations/${me.conversationId}`;
    const before = (await api.request('GET', path, { token: me.access })).body;
    for (const raw of ['[1,2]', '[]', '"title"', '5', 'true', 'null']) {
      const res = await api.request('PATCH', path, { raw, token: me.access });
      expect(res.status).toBe(422);
      expect(res.body.detail).toEqual([
        { loc: ['body'], msg: 'The body must be a JSON object.', type: 'type_error' },
      ]);
    }
    const created = await api.request('POST', '/api/conversations/', { raw: '[]', token: me.access });
    expect(created.status).toBe(422);
    expect((await api.request('GET', path, { token: me.access })).body).toEqual(before);
    const list = await api.request('GET', '/api/conversations/', { token: me.access });
    expect(list.body.count).toBe(1);
  });

  test('every Bearer route answers 401 to a missing or bad token before it validates its input', async () => {
    const doc = (await api.request('GET', '/api/openapi.json')).body;
    const routes = Object.entries(
      doc.paths as Record<string, Record<string, { security?: unknown[] }>>,
    ).flatMap(([path, operations]) =>
      Object.entries(operations)
        // A public route says `security: []`.
        .filter(([, operation]) => operation.security?.length)
        .map(([method]) => [method.toUpperCase(), path.replace(/\{[^}]+\}/g, 'not-an-id')] as const),
    );
    expect(routes.length).toBeGreaterThan(20);
    // Input every route refuses: no body where one is required, a body that is not JSON
    // or not an object, bad paths, out-of-range queries.
    const query = '?limit=0&offset=-1&days=0&q=&format=pdf';
    for (const [method, path] of routes)
      for (const token of [undefined, 'not.a.token'])
        for (const raw of method === 'GET' ? [undefined] : [undefined, '{"title": ', '[1, 2]']) {
          const res = await api.request(method, `${path}${query}`, { token, raw });
          const seen = { method, path, token, raw, status: res.status };
          expect(seen).toEqual({ ...seen, status: 401 });
          expect(res.headers.get('www-authenticate')).toBe('Bearer');
          expect(res.body.detail).toEqual(expect.any(String));
        }
  });

  test('an array index in a 422 loc is a number, as Django Ninja gives it', async () => {
    const me = await api.signUp();
    const res = await api.request('POST', '/api/chat', {
      token: me.access,
      body: {
        id: me.conversationId,
        messages: [{ id: 'm', role: 'user', parts: [{ type: 'text', text: 5 }] }],
      },
    });
    expect(res.status).toBe(422);
    expect(res.body.detail[0].loc).toEqual(['body', 'messages', 0, 'parts', 0, 'text']);
  });

  test('validation failures are 422 with loc/msg/type items', async () => {
    const res = await api.request('POST', '/api/token/pair', { body: { username: 5 } });
    expect(res.status).toBe(422);
    for (const item of res.body.detail) {
      expect(Array.isArray(item.loc)).toBe(true);
      expect(typeof item.msg).toBe('string');
      expect(typeof item.type).toBe('string');
    }
  });

  test("a field's 422 says what the field must be, in words, not the schema validator's", async () => {
    const refused = async (path: string, body: unknown, token?: string) => {
      const res = await api.request('POST', path, { body, token });
      expect(res.status).toBe(422);
      return res.body.detail;
    };
    expect(await refused('/api/token/pair', { username: 'someone' })).toEqual([
      { loc: ['body', 'password'], msg: 'Field required.', type: 'missing' },
    ]);
    expect(await refused('/api/token/pair', { username: 'someone', password: {} })).toEqual([
      { loc: ['body', 'password'], msg: 'Must be a string.', type: 'value_error' },
    ]);
    expect(await refused('/api/token/refresh', { refresh: '' })).toEqual([
      { loc: ['body', 'refresh'], msg: 'Must not be empty.', type: 'value_error' },
    ]);
    const email = await refused('/api/auth/register', { username: 'someone', email: 'x', password: 'x' });
    expect(email).toContainEqual({
      loc: ['body', 'email'],
      msg: 'Enter a valid email address.',
      type: 'value_error',
    });
    const me = await api.signUp();
    const chat = await refused('/api/chat', { id: 5, messages: [7] }, me.access);
    expect(chat).toEqual(
      expect.arrayContaining([
        { loc: ['body', 'id'], msg: 'Must be a string.', type: 'value_error' },
        { loc: ['body', 'messages', 0], msg: 'Must be an object.', type: 'value_error' },
      ]),
    );
    expect(await refused('/api/chat', { id: me.conversationId, messages: null }, me.access)).toContainEqual({
      loc: ['body', 'messages'],
      msg: 'Must be an array.',
      type: 'value_error',
    });
  });
});

describe('routing', () => {
  test('every route answers with and without a trailing slash', async () => {
    const { access } = await api.login((await api.register()).username);
    for (const path of ['/api/auth/me', '/api/auth/me/', '/api/conversations', '/api/conversations/'])
      expect((await api.request('GET', path, { token: access })).status).toBe(200);
  });
});

describe('API documentation', () => {
  test('serves the OpenAPI document with every route, tags and the bearer scheme', async () => {
    const res = await api.request('GET', '/api/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    expect(res.body.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    const paths = Object.keys(res.body.paths);
    for (const path of [
      '/api/health',
      '/api/auth/register',
      '/api/auth/logout',
      '/api/auth/me',
      '/api/token/pair',
      '/api/token/refresh',
      '/api/conversations/',
      '/api/conversations/{id}',
      '/api/conversations/{id}/messages',
    ])
      expect(paths).toContain(path);
    expect(paths.some((p) => p.startsWith('/ws'))).toBe(false);
    expect(res.body.paths['/api/auth/me'].get.security).toEqual([{ bearerAuth: [] }]);
    expect(res.body.paths['/api/auth/me'].get.tags).toEqual(['auth']);
    expect(res.body.paths['/api/auth/register'].post.requestBody).toBeDefined();
    // Every request body is documented as JSON with its schema (Swagger UI shows the fields).
    const bodies = Object.entries(
      res.body.paths as Record<
        string,
        Record<string, { requestBody?: { content?: Record<string, { schema?: { type?: string } }> } }>
      >,
    ).flatMap(([path, operations]) =>
      Object.entries(operations).flatMap(([method, operation]) =>
        operation.requestBody ? [{ route: `${method} ${path}`, body: operation.requestBody }] : [],
      ),
    );
    expect(bodies.length).toBeGreaterThanOrEqual(11);
    for (const { route, body } of bodies)
      expect({ route, type: body.content?.['application/json']?.schema?.type }).toEqual({
        route,
        type: 'object',
      });
    const created = res.body.paths['/api/conversations/'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(created.properties)).toEqual(['title', 'model', 'system_prompt']);
  });

  test('strict linters find nothing to refuse: no TypeBox option in a schema, every operation says whether it needs a token, the server is named', async () => {
    const doc = (await api.request('GET', '/api/openapi.json')).body;
    // TypeBox's `error` option (the words of a 422) is a string on a schema; a property
    // named `error` is a schema of its own.
    const stray: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (typeof node !== 'object' || node === null) return;
      for (const [key, value] of Object.entries(node)) {
        if (key === 'error' && typeof value === 'string') stray.push(at);
        walk(value, `${at}/${key}`);
      }
    };
    walk(doc, '');
    expect(stray).toEqual([]);
    const security = Object.entries(
      doc.paths as Record<string, Record<string, { security?: unknown }>>,
    ).flatMap(([path, operations]) =>
      Object.entries(operations).map(([method, operation]) => ({
        route: `${method} ${path}`,
        security: operation.security,
      })),
    );
    const open = security
      .filter((operation) => JSON.stringify(operation.security) === '[]')
      .map((o) => o.route);
    expect(open.sort()).toEqual([
      'get /api/health',
      'post /api/auth/register',
      'post /api/token/pair',
      'post /api/token/refresh',
    ]);
    for (const operation of security.filter((o) => !open.includes(o.route)))
      expect(operation).toEqual({ route: operation.route, security: [{ bearerAuth: [] }] });
    expect(doc.servers).toEqual([{ url: '/', description: 'This server' }]);
    // The words themselves still answer a bad request.
    const { access } = await api.login((await api.register()).username);
    const refused = await api.request('GET', '/api/conversations/?limit=0', { token: access });
    expect(refused.body.detail[0].msg).toBe('Must be a whole number from 1 to 100.');
  });

  test('routes that answer with streams or files of their own (the AI SDK routes, the export) document their answers', async () => {
    const { paths } = (await api.request('GET', '/api/openapi.json')).body;
    const send = paths['/api/chat'].post.responses;
    expect(Object.keys(send).sort()).toEqual(['200', '401', '404', '409', '422', '429']);
    expect(Object.keys(send['200'].content)).toEqual(['text/event-stream']);
    expect(send['429'].headers['Retry-After'].schema).toEqual({ type: 'integer', minimum: 1 });
    const resume = paths['/api/chat/{id}/stream'].get.responses;
    expect(Object.keys(resume).sort()).toEqual(['200', '204', '401', '404']);
    expect(Object.keys(resume['200'].content)).toEqual(['text/event-stream']);
    // The export is a download of either type, named by its header.
    const exported = paths['/api/conversations/{id}/export'].get.responses['200'];
    expect(Object.keys(exported.content).sort()).toEqual(['application/json', 'text/markdown']);
    expect(exported.headers['Content-Disposition']).toBeDefined();
    // The hand-written answers' key is not left in the document.
    expect(JSON.stringify(paths)).not.toContain('x-documented-responses');
  });

  test('every response is a valid OpenAPI response object: a 204 has no content, any other names media types', async () => {
    for (const path of ['/api/openapi.json', '/api/openapi.json/']) {
      const doc = (await api.request('GET', path)).body;
      const responses = Object.entries(
        doc.paths as Record<string, Record<string, { responses?: Record<string, { content?: object }> }>>,
      ).flatMap(([path, operations]) =>
        Object.entries(operations).flatMap(([method, operation]) =>
          Object.entries(operation.responses ?? {}).map(([status, response]) => ({
            route: `${method} ${path} ${status}`,
            content: response.content,
          })),
        ),
      );
      const bodiless = responses.filter(({ route }) => route.endsWith(' 204'));
      expect(bodiless.map(({ route }) => route).sort()).toEqual([
        'delete /api/auth/me 204',
        'delete /api/conversations/{id} 204',
        'get /api/chat/{id}/stream 204',
      ]);
      for (const { route, content } of bodiless)
        expect({ route, content }).toEqual({ route, content: undefined });
      for (const { route, content } of responses.filter(({ route }) => !route.endsWith(' 204')))
        for (const [mediaType, media] of Object.entries(content ?? {}))
          expect({ route, mediaType, media: typeof media }).toEqual({
            route,
            mediaType: expect.stringMatching(/^[a-z]+\/[a-z0-9.+-]+$/),
            media: 'object',
          });
    }
  });

  test('serves Swagger UI and its assets locally, pointing at the absolute spec URL', async () => {
    const page = await fetch(`${server.url}/api/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('/api/docs/assets/swagger-ui-bundle.js');
    expect(html).toContain('"url":"/api/openapi.json"');
    expect(html).not.toContain('unpkg.com');
    expect(html).toContain('<link rel="icon" href="data:," />'); // no request for /favicon.ico
    const bundle = await fetch(`${server.url}/api/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
  });
});

describe('CORS', () => {
  test('allows the configured origin and not others', async () => {
    const allowed = await fetch(`${server.url}/api/health/`, {
      headers: { origin: 'http://app.example.com' },
    });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://app.example.com');
    const other = await fetch(`${server.url}/api/health/`, {
      headers: { origin: 'http://evil.example.com' },
    });
    expect(other.headers.get('access-control-allow-origin')).not.toBe('http://evil.example.com');
  });

  test('an origin is allowed only when listed, exactly: no name of a plain object, no look-alike', async () => {
    for (const origin of [
      'constructor',
      '__proto__',
      'toString',
      'hasOwnProperty',
      'http://app.example.com.evil.com',
      'http://APP.example.com',
      'https://app.example.com',
      'null',
    ]) {
      const res = await fetch(`${server.url}/api/health/`, { headers: { origin } });
      expect({ origin, allowed: res.headers.get('access-control-allow-origin') }).toEqual({
        origin,
        allowed: null,
      });
      const pre = await fetch(`${server.url}/api/conversations/`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      expect({ origin, allowed: pre.headers.get('access-control-allow-origin') }).toEqual({
        origin,
        allowed: null,
      });
    }
  });

  /** A browser's preflight from the allowed origin, for `method` with `requestHeaders`. */
  const preflight = (method: string, requestHeaders: string, id?: string) =>
    fetch(`${server.url}/api/conversations/`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://app.example.com',
        'access-control-request-method': method,
        'access-control-request-headers': requestHeaders,
        ...(id ? { 'x-request-id': id } : {}),
      },
    });

  test('answers preflight requests for the API', async () => {
    const res = await preflight('POST', 'authorization,content-type');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://app.example.com');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
  });

  test('a preflight is logged once with its request id, as every request is', async () => {
    const res = await preflight('PATCH', 'authorization,content-type', 'preflight-log-1');
    expect(res.headers.get('x-request-id')).toBe('preflight-log-1');
    const lines = () =>
      server.logs.map((l) => JSON.parse(l)).filter((l) => l.request_id === 'preflight-log-1');
    await until(() => lines().length > 0, 'the preflight log line');
    await Bun.sleep(50);
    expect(lines()).toEqual([expect.objectContaining({ level: 'info', method: 'OPTIONS', status: 204 })]);
  });

  test('lets a page send its own request id', async () => {
    const res = await preflight('GET', 'authorization,x-request-id');
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'x-request-id']));
  });

  test("exposes the request id, a lockout's Retry-After and an export's file name, and nothing of the request", async () => {
    const res = await fetch(`${server.url}/api/health/`, {
      headers: { origin: 'http://app.example.com', 'x-custom-probe': '1' },
    });
    const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/,\s*/);
    expect(exposed.sort()).toEqual(['content-disposition', 'retry-after', 'x-request-id']);
  });
});

describe('security headers', () => {
  test('every response carries nosniff, frame denial, a referrer policy and a CSP', async () => {
    for (const path of ['/api/health/', '/api/nope']) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('referrer-policy')).toBeTruthy();
      expect(res.headers.get('content-security-policy')).toBeTruthy();
    }
  });
});
