import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Client, createClient, STRONG_PASSWORD } from '../support/client';
import { DRIP_ANSWER, drip } from '../support/openai-stub';
import { startServer, type TestServer } from '../support/server';
import { until } from '../support/wait';
import { connect, connectAuthenticated } from '../support/ws';

/** SPEC §13, accounts: changing the password and deleting the account. */

let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer();
  api = createClient(server.url);
});
afterAll(() => server.stop());

const NEW_PASSWORD = 'Another-Strong-Pass-7!';

/** Whether a WebSocket auth with `token` is refused with AUTH_FAILED and 4001. */
const socketRefuses = async (conversationId: string, token: string) => {
  const ws = await connect(`${server.wsUrl}/ws/chat/${conversationId}/`);
  ws.send({ type: 'auth', token });
  const frame = await ws.next();
  const { code } = await ws.closed;
  return frame.code === 'AUTH_FAILED' && code === 4001;
};

describe('POST /api/auth/password', () => {
  test('changes the password; every token issued before is refused over REST and WebSocket; the new pair works', async () => {
    const me = await api.signUp();
    const res = await api.request('POST', '/api/auth/password', {
      token: me.access,
      body: { current_password: STRONG_PASSWORD, new_password: NEW_PASSWORD },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      detail: expect.any(String),
      access: expect.any(String),
      refresh: expect.any(String),
    });
    expect((await api.request('GET', '/api/auth/me', { token: me.access })).status).toBe(401);
    expect((await api.request('POST', '/api/token/refresh', { body: { refresh: me.refresh } })).status).toBe(
      401,
    );
    expect(await socketRefuses(me.conversationId, me.access)).toBe(true);
    expect((await api.request('GET', '/api/auth/me', { token: res.body.access })).status).toBe(200);
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, res.body.access);
    ws.close();
    const rotated = await api.request('POST', '/api/token/refresh', { body: { refresh: res.body.refresh } });
    expect(rotated.status).toBe(200);
    const login = (password: string) =>
      api.request('POST', '/api/token/pair', { body: { username: me.user.username, password } });
    expect((await login(STRONG_PASSWORD)).status).toBe(401);
    expect((await login(NEW_PASSWORD)).status).toBe(200);
  });

  test("the user's open sockets close with 4001 (they authenticated with a voided token), their reply goes on; another user's socket stays open", async () => {
    const me = await api.signUp();
    const other = await api.signUp();
    const mine = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const theirs = await connectAuthenticated(server.wsUrl, other.conversationId, other.access);
    mine.send({ type: 'chat.message', content: drip('change my password mid-reply', 50) });
    await mine.next((f) => f.type === 'chat.stream');
    const res = await api.request('POST', '/api/auth/password', {
      token: me.access,
      body: { current_password: STRONG_PASSWORD, new_password: NEW_PASSWORD },
    });
    expect(res.status).toBe(200);
    expect((await mine.closed).code).toBe(4001);
    expect(mine.frames.at(-1)?.code).toBe('AUTH_FAILED');
    theirs.send({ type: 'chat.message', content: 'still here' });
    expect((await theirs.reply()).final.done).toBe(true);
    const messages = async () =>
      (
        await api.request('GET', `/api/conversations/${me.conversationId}/messages`, {
          token: res.body.access,
        })
      ).body.items;
    await until(async () => (await messages()).length === 2, 'the answer stored', 10_000);
    expect((await messages())[1]).toMatchObject({ status: 'complete', content: DRIP_ANSWER });
    const again = await connectAuthenticated(server.wsUrl, me.conversationId, res.body.access);
    again.send({ type: 'chat.message', content: 'signed in again' });
    expect((await again.reply()).final.done).toBe(true);
    theirs.close();
    again.close();
  });

  test('a wrong current password is 422 on current_password; a weak new one is 422 per rule on new_password; nothing changes', async () => {
    const me = await api.signUp();
    const wrong = await api.request('POST', '/api/auth/password', {
      token: me.access,
      body: { current_password: 'Not-the-password-1!', new_password: NEW_PASSWORD },
    });
    expect(wrong.status).toBe(422);
    expect(wrong.body.detail[0].loc).toEqual(['body', 'current_password']);
    for (const weak of ['short', 'alllowercase-and-long-1!', `${me.user.username}-Aa1!xyz`]) {
      const res = await api.request('POST', '/api/auth/password', {
        token: me.access,
        body: { current_password: STRONG_PASSWORD, new_password: weak },
      });
      expect(res.status).toBe(422);
      expect(res.body.detail.every((d: { loc: string[] }) => d.loc.join('.') === 'body.new_password')).toBe(
        true,
      );
    }
    for (const body of [
      {},
      { current_password: STRONG_PASSWORD },
      { current_password: 5, new_password: NEW_PASSWORD },
    ])
      expect((await api.request('POST', '/api/auth/password', { token: me.access, body })).status).toBe(422);
    expect((await api.request('GET', '/api/auth/me', { token: me.access })).status).toBe(200);
    expect(
      (
        await api.request('POST', '/api/auth/password', {
          body: { current_password: 'x', new_password: 'y' },
        })
      ).status,
    ).toBe(401);
  });
});

describe('DELETE /api/auth/me', () => {
  test('removes the user, their conversations and messages; their tokens are refused and their sockets closed with 4001', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: 'remember me?' });
    await ws.reply();
    const res = await api.request('DELETE', '/api/auth/me', {
      token: me.access,
      body: { password: STRONG_PASSWORD },
    });
    expect(res.status).toBe(204);
    const closed = await ws.closed;
    expect(closed.code).toBe(4001);
    expect(ws.frames.at(-1)?.code).toBe('AUTH_FAILED');
    expect((await api.request('GET', '/api/auth/me', { token: me.access })).status).toBe(401);
    expect((await api.request('POST', '/api/token/refresh', { body: { refresh: me.refresh } })).status).toBe(
      401,
    );
    expect(await socketRefuses(me.conversationId, me.access)).toBe(true);
    const { createConversationRepository } = await import('../../src/modules/conversations/repository');
    const repo = createConversationRepository(server.resources.database.db);
    expect(await repo.byId(me.conversationId)).toBeUndefined();
    expect((await repo.branch(me.conversationId, 10, 0)).count).toBe(0);
    // The username is free again.
    const again = await api.request('POST', '/api/auth/register', {
      body: { username: me.user.username, email: me.user.email, password: STRONG_PASSWORD },
    });
    expect(again.status).toBe(201);
  });

  test('a wrong or missing password is 422 on password, and nothing is deleted; another user is untouched', async () => {
    const me = await api.signUp();
    const other = await api.signUp();
    const otherSocket = await connectAuthenticated(server.wsUrl, other.conversationId, other.access);
    const wrong = await api.request('DELETE', '/api/auth/me', {
      token: me.access,
      body: { password: 'Wrong-pass-123!' },
    });
    expect(wrong.status).toBe(422);
    expect(wrong.body.detail[0].loc).toEqual(['body', 'password']);
    expect((await api.request('DELETE', '/api/auth/me', { token: me.access, body: {} })).status).toBe(422);
    expect((await api.request('GET', '/api/auth/me', { token: me.access })).status).toBe(200);
    await api.request('DELETE', '/api/auth/me', { token: me.access, body: { password: STRONG_PASSWORD } });
    otherSocket.send({ type: 'chat.message', content: 'still here' });
    expect((await otherSocket.reply()).final.done).toBe(true);
    expect(
      (await api.request('GET', `/api/conversations/${other.conversationId}`, { token: other.access }))
        .status,
    ).toBe(200);
    otherSocket.close();
  });
});
