import { afterAll, beforeAll, expect, test } from 'bun:test';
import { createClient, STRONG_PASSWORD } from './support/client';
import { startServer, type TestServer } from './support/server';
import { connectAuthenticated } from './support/ws';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ LOG_LEVEL: 'trace', DEBUG: 'true' });
});
afterAll(() => server.stop());

test('a full session logs JSON lines without tokens, passwords or message content', async () => {
  const api = createClient(server.url);
  const secretMessage = 'my-very-private-message-7f3a';
  const user = await api.register();
  await api.request('POST', '/api/token/pair', {
    body: { username: user.username, password: 'Wrong-password-1!' },
  });
  const tokens = await api.login(user.username);
  const refreshed = (await api.request('POST', '/api/token/refresh', { body: { refresh: tokens.refresh } }))
    .body;
  const conversation = (
    await api.request('POST', '/api/conversations/', { token: refreshed.access, body: {} })
  ).body;
  const ws = await connectAuthenticated(server.wsUrl, conversation.id, refreshed.access);
  ws.send({ type: 'chat.message', content: secretMessage });
  const { deltas } = await ws.reply();
  ws.send({ type: 'chat.message', content: `${secretMessage} [stub:status:500]` });
  await ws.reply();
  ws.sendRaw(`{"broken": "${secretMessage}`);
  await ws.next();
  ws.close();
  await api.request('POST', '/api/auth/logout', {
    token: refreshed.access,
    body: { refresh: refreshed.refresh },
  });
  await api.request('GET', '/api/auth/me', { token: refreshed.access });
  await Bun.sleep(100);

  expect(server.logs.length).toBeGreaterThan(5);
  for (const line of server.logs) expect(() => JSON.parse(line)).not.toThrow();
  const all = server.logs.join('\n');
  for (const secret of [
    STRONG_PASSWORD,
    'Wrong-password-1!',
    tokens.access,
    tokens.refresh,
    refreshed.access,
    refreshed.refresh,
    secretMessage,
    deltas.join(''),
  ])
    expect(all).not.toContain(secret);
  // The requests themselves are logged.
  expect(all).toContain('"route":"/api/token/pair"');
});
