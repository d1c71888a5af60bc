import { afterEach, describe, expect, test } from 'bun:test';
import { type Client, createClient, STRONG_PASSWORD } from './support/client';
import { DEFAULT_TOKENS, STUB_PROMPT_TOKENS } from './support/openai-stub';
import { startOtlpReceiver } from './support/otlp-receiver';
import { startServer, type TestServer } from './support/server';
import { until } from './support/wait';
import { connectAuthenticated } from './support/ws';

/** SPEC §15: metrics, traces and request ids. */

const servers: TestServer[] = [];
// Each test's server stops when the test ends, so that the next test reuses its
// emptied database instead of cloning a new one (~350 ms of CPU each).
afterEach(() => Promise.all(servers.splice(0).map((s) => s.stop())));
const start = async (env: Record<string, string> = {}) => {
  const server = await startServer(env);
  servers.push(server);
  return { server, api: createClient(server.url) };
};

const scrape = async (server: TestServer, token?: string) => {
  const res = await fetch(`${server.url}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
};

/** The value of the series line that starts with `series` (name and labels as written). */
const seriesValue = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

/** One chat reply on a new user's conversation; returns what was said and the user. */
const chatOnce = async (server: TestServer, api: Client, content = 'a secret plan for the metrics') => {
  const me = await api.signUp();
  const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
  ws.send({ type: 'chat.message', content });
  await ws.reply();
  return { me, ws, content };
};

describe('GET /metrics', () => {
  test('Prometheus text with the chat, model, HTTP and process series, observed once per reply', async () => {
    const { server, api } = await start();
    const { me, ws, content } = await chatOnce(server, api);
    ws.send({ type: 'chat.message', content: '   ' });
    await ws.next((f) => f.type === 'chat.error');
    await api.request('GET', `/api/conversations/${me.conversationId}`, { token: me.access });
    const { status, type, text } = await scrape(server);
    expect(status).toBe(200);
    expect(type).toStartWith('text/plain');
    expect(seriesValue(text, 'chat_open_sockets')).toBe(1);
    expect(seriesValue(text, 'chat_replies_in_flight')).toBe(0);
    expect(seriesValue(text, 'chat_replies_total{outcome="complete"}')).toBe(1);
    expect(seriesValue(text, 'chat_errors_total{code="EMPTY_CONTENT"}')).toBe(1);
    const model = 'gen_ai_operation_name="chat",gen_ai_request_model="gpt-4o-mini"';
    expect(seriesValue(text, `gen_ai_client_token_usage_sum{${model},gen_ai_token_type="input"}`)).toBe(
      STUB_PROMPT_TOKENS,
    );
    expect(seriesValue(text, `gen_ai_client_token_usage_sum{${model},gen_ai_token_type="output"}`)).toBe(
      DEFAULT_TOKENS.length,
    );
    expect(seriesValue(text, `gen_ai_client_operation_duration_seconds_count{${model}}`)).toBe(1);
    expect(seriesValue(text, `gen_ai_client_operation_time_to_first_chunk_seconds_count{${model}}`)).toBe(1);
    expect(
      seriesValue(
        text,
        'http_server_request_duration_seconds_count{method="GET",route="/api/conversations/:id",status="200"}',
      ),
    ).toBe(1);
    expect(text).toContain('process_resident_memory_bytes');
    // Bounded labels and nothing a user wrote or holds.
    expect(text).not.toContain(me.conversationId);
    expect(text).not.toContain(content);
    expect(text).not.toContain(me.access);
    ws.close();
  });

  test('a failed reply is counted by outcome and its code; a path that matches no route is not a label', async () => {
    const { server, api } = await start();
    await chatOnce(server, api, 'boom [stub:status:500]');
    const stranger = `/no/such/${crypto.randomUUID()}`;
    expect((await fetch(`${server.url}${stranger}`)).status).toBe(404);
    const { text } = await scrape(server);
    expect(seriesValue(text, 'chat_replies_total{outcome="failed"}')).toBe(1);
    expect(seriesValue(text, 'chat_errors_total{code="AI_ERROR"}')).toBe(1);
    expect(text).toContain('error_type="AI_ERROR"');
    expect(text).not.toContain(stranger);
    expect(text).toContain('route="unmatched"');
  });

  test('with METRICS_TOKEN: 401 without it or with another, 200 with it', async () => {
    const { server } = await start({ METRICS_TOKEN: 'scrape-me-please' });
    expect((await scrape(server)).status).toBe(401);
    expect((await scrape(server, 'scrape-me-pleasf')).status).toBe(401);
    expect((await scrape(server, 'scrape-me-please-too')).status).toBe(401);
    const ok = await scrape(server, 'scrape-me-please');
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('chat_open_sockets');
  });

  test('in production: 404 without METRICS_TOKEN; with it, exempt from the Host check and the HTTPS redirect', async () => {
    const production = {
      NODE_ENV: 'production',
      SECRET_KEY: 's'.repeat(40),
      JWT_SECRET_KEY: 'j'.repeat(40),
      ALLOWED_HOSTS: 'api.example.com',
    };
    const closed = await start(production);
    for (const method of ['GET', 'POST', 'DELETE']) {
      // Absent for every method: a 405 naming GET would say that it is there.
      const res = await fetch(`${closed.server.url}/metrics`, {
        method,
        headers: { host: 'api.example.com' },
      });
      expect({ method, status: res.status }).toEqual({ method, status: 404 });
      expect(await res.json()).toEqual({ detail: 'Not found' });
    }
    const open = await start({ ...production, METRICS_TOKEN: 'scrape-me-please' });
    const scraped = await fetch(`${open.server.url}/metrics`, {
      headers: { authorization: 'Bearer scrape-me-please', host: '10.0.0.7:8000' },
      redirect: 'manual',
    });
    expect(scraped.status).toBe(200);
    const other = await fetch(`${open.server.url}/api/auth/me`, {
      headers: { host: '10.0.0.7:8000' },
      redirect: 'manual',
    });
    expect(other.status).toBe(400);
  });
});

describe('X-Request-Id', () => {
  test('every response carries one: a safe incoming id is kept, any other replaced', async () => {
    const { server } = await start();
    const id = async (sent?: string) =>
      (
        await fetch(`${server.url}/api/health/`, {
          headers: sent === undefined ? {} : { 'x-request-id': sent },
        })
      ).headers.get('x-request-id');
    const generated = await id();
    expect(generated).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    expect(await id()).not.toBe(generated);
    for (const kept of ['abc-123', 'A.b_C-9', 'x'.repeat(128)]) expect(await id(kept)).toBe(kept);
    for (const replaced of ['x'.repeat(129), 'has space', 'semi;colon', '<script>', 'ünïcode', ''])
      expect({ replaced, got: await id(replaced) }).toEqual({
        replaced,
        got: expect.stringMatching(/^[A-Za-z0-9._-]{1,128}$/),
      });
    const notFound = await fetch(`${server.url}/nowhere`, { headers: { 'x-request-id': 'trace-me' } });
    expect(notFound.headers.get('x-request-id')).toBe('trace-me');
  });

  test('each request is logged once at info with method, route template, status, duration and request_id', async () => {
    const { server, api } = await start();
    const me = await api.signUp();
    await fetch(`${server.url}/api/conversations/${me.conversationId}`, {
      headers: { authorization: `Bearer ${me.access}`, 'x-request-id': 'find-me-1' },
    });
    // Logged once the response has gone out.
    const lines = () => server.logs.map((l) => JSON.parse(l)).filter((l) => l.request_id === 'find-me-1');
    await until(() => lines().length > 0, 'the request log line');
    await Bun.sleep(50);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatchObject({
      level: 'info',
      method: 'GET',
      route: '/api/conversations/:id',
      status: 200,
      request_id: 'find-me-1',
    });
    expect(lines()[0].ms).toBeNumber();
    expect(JSON.stringify(lines()[0])).not.toContain(me.conversationId);
  });

  test('every other line logged about a request carries its request_id, however deep and however late', async () => {
    // The AI SDK endpoint's reply ends with an automatic title, whose failure is logged
    // after the answer: a line about that request, logged far from its route.
    const { server, api } = await start({ AI_TITLES: 'true', AI_TITLE_MODEL: '[stub:status:500]' });
    const me = await api.signUp();
    const res = await fetch(`${server.url}/api/chat`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${me.access}`,
        'content-type': 'application/json',
        'x-request-id': 'deep-1',
      },
      body: JSON.stringify({
        id: me.conversationId,
        messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'name this' }] }],
        trigger: 'submit-message',
      }),
    });
    expect(res.status).toBe(200);
    await res.text();
    const titleFailed = () =>
      server.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'automatic title failed');
    await until(() => titleFailed().length > 0, 'the title failure logged');
    expect(titleFailed()).toEqual([expect.objectContaining({ level: 'warn', request_id: 'deep-1' })]);
    // Lines about no request carry none: the same failure after a WebSocket message.
    const other = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, other.conversationId, other.access);
    ws.send({ type: 'chat.message', content: 'name this too' });
    await ws.reply();
    await until(() => titleFailed().length > 1, 'the second title failure logged');
    expect(titleFailed()[1]).not.toHaveProperty('request_id');
    ws.close();
  });

  test('a WebSocket upgrade: its 101 carries the request id, and it is logged and counted as a 101', async () => {
    const { server } = await start();
    const { hostname, port } = new URL(server.url);
    const net = await import('node:net');
    const socket = net.connect(Number(port), hostname);
    const head = await new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text.slice(0, text.indexOf('\r\n\r\n')));
      });
      socket.on('error', reject);
      socket.write(
        `GET /ws/chat/${crypto.randomUUID()}/ HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Request-Id: upgrade-1\r\n\r\n',
      );
    });
    socket.destroy();
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(head.toLowerCase()).toContain('x-request-id: upgrade-1');
    const lines = () => server.logs.map((l) => JSON.parse(l)).filter((l) => l.request_id === 'upgrade-1');
    await until(() => lines().length > 0, 'the upgrade logged');
    expect(lines()).toEqual([
      expect.objectContaining({ msg: 'request', route: '/ws/chat/:conversationId', status: 101 }),
    ]);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/route="\/ws\/chat\/:conversationId",status="101"/);
  });

  test('requests answered before routing are logged too: a broken URL, a body declared too large, a bad Host, the HTTPS redirect, a foreign Origin; and the docs page', async () => {
    const send = async (server: TestServer, id: string, path: string, init: RequestInit = {}) => {
      const res = await fetch(`${server.url}${path}`, {
        redirect: 'manual',
        ...init,
        headers: { 'x-request-id': id, ...(init.headers as Record<string, string>) },
      });
      await res.arrayBuffer();
      return { id, header: res.headers.get('x-request-id'), status: res.status };
    };
    const logged = async (server: TestServer, sent: { id: string; status: number }[]) => {
      const lineOf = (id: string) => server.logs.map((l) => JSON.parse(l)).filter((l) => l.request_id === id);
      await until(() => sent.every(({ id }) => lineOf(id).length > 0), 'every request logged');
      await Bun.sleep(50);
      for (const { id, status } of sent)
        expect({ id, lines: lineOf(id) }).toEqual({
          id,
          lines: [expect.objectContaining({ level: 'info', status, msg: 'request', ms: expect.any(Number) })],
        });
    };
    const development = await start({ HTTP_MAX_BODY_BYTES: '1024' });
    const early = [
      await send(development.server, 'broken-url', '/api/conversations/%E0%A4%A'),
      await send(development.server, 'too-large', '/api/auth/register', {
        method: 'POST',
        body: JSON.stringify({ username: 'x'.repeat(2048) }),
      }),
      await send(development.server, 'docs-page', '/api/docs'),
    ];
    expect(early.map(({ status }) => status)).toEqual([400, 413, 200]);
    for (const { id, header } of early) expect(header).toBe(id);
    await logged(development.server, early);

    const production = await start({
      NODE_ENV: 'production',
      SECRET_KEY: 's'.repeat(40),
      JWT_SECRET_KEY: 'j'.repeat(40),
      ALLOWED_HOSTS: 'api.example.com',
      CORS_ALLOWED_ORIGINS: 'https://app.example.com',
    });
    const refused = [
      await send(production.server, 'bad-host', '/api/auth/me', { headers: { host: 'evil.example' } }),
      await send(production.server, 'plain-http', '/api/auth/me', { headers: { host: 'api.example.com' } }),
      await send(production.server, 'foreign-origin', `/ws/chat/${crypto.randomUUID()}`, {
        headers: {
          host: 'api.example.com',
          upgrade: 'websocket',
          connection: 'Upgrade',
          origin: 'https://evil.example',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'sec-websocket-version': '13',
        },
      }),
    ];
    expect(refused.map(({ status }) => status)).toEqual([400, 308, 403]);
    for (const { id, header } of refused) expect(header).toBe(id);
    await logged(production.server, refused);
  });
});

describe('traces over OTLP/HTTP', () => {
  test('a span per request and per reply with the gen_ai attributes; nothing secret in them', async () => {
    const receiver = startOtlpReceiver();
    try {
      const { server, api } = await start({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=abc123',
        OTEL_SERVICE_NAME: 'chatbot-under-test',
      });
      const { me, ws, content } = await chatOnce(server, api);
      await api.request('GET', `/api/conversations/${me.conversationId}/messages`, { token: me.access });
      await until(
        () =>
          receiver.spans.some((s) => s.name.startsWith('chat ')) &&
          receiver.spans.some((s) => s.attributes['http.route'] === '/api/conversations/:id/messages'),
        'the spans',
        8000,
      );
      const reply = receiver.spans.find((s) => s.name === 'chat gpt-4o-mini');
      expect(reply?.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.usage.input_tokens': STUB_PROMPT_TOKENS,
        'gen_ai.usage.output_tokens': DEFAULT_TOKENS.length,
      });
      expect(reply?.resource['service.name']).toBe('chatbot-under-test');
      const request = receiver.spans.find(
        (s) => s.attributes['http.route'] === '/api/conversations/:id/messages',
      );
      expect(request).toMatchObject({
        name: 'GET /api/conversations/:id/messages',
        kind: 2, // SERVER
        attributes: { 'http.request.method': 'GET', 'http.response.status_code': 200 },
      });
      expect(receiver.headers[0]?.['x-collector-key']).toBe('abc123');
      const all = receiver.bodies.join('\n');
      for (const secret of [content, me.access, me.refresh, STRONG_PASSWORD])
        expect(all).not.toContain(secret);
      ws.close();
    } finally {
      receiver.stop();
    }
  });
});
