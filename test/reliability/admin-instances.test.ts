import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createClient } from '../support/client';
import { type Instance, startInstances } from '../support/instances';
import { signUpStaff } from '../support/staff';
import { connectAuthenticated } from '../support/ws';

/** SPEC §13 across two instances: quotas, quota changes and deactivation hold everywhere. */

let pair: Awaited<ReturnType<typeof startInstances>>;
let a: Instance;
let b: Instance;
let staff: { access: string };

beforeAll(async () => {
  pair = await startInstances({ QUOTA_DAILY_MESSAGES: '2', CHAT_RATE_LIMIT: '100' });
  [a, b] = pair.instances;
  staff = await signUpStaff(pair.database.handle.db, createClient(a.url));
});
afterAll(() => pair.stop());

describe('two instances', () => {
  test('the daily quota counts messages sent through both; a new limit set through one holds on the other at once', async () => {
    const me = await createClient(a.url).signUp();
    const second = (
      await createClient(b.url).request('POST', '/api/conversations/', { token: me.access, body: {} })
    ).body.id;
    const onA = await connectAuthenticated(a.wsUrl, me.conversationId, me.access);
    const onB = await connectAuthenticated(b.wsUrl, second, me.access);
    const say = async (ws: typeof onA, content: string) => {
      ws.send({ type: 'chat.message', content });
      const { final } = await ws.reply();
      return final.done ? 'done' : final.code;
    };
    expect(await say(onA, 'one')).toBe('done');
    expect(await say(onB, 'two')).toBe('done');
    expect(await say(onA, 'three')).toBe('QUOTA_EXCEEDED');
    expect(await say(onB, 'three')).toBe('QUOTA_EXCEEDED');
    const raised = await createClient(a.url).request('PATCH', `/api/admin/users/${me.user.id}`, {
      token: staff.access,
      body: { daily_message_quota: 3 },
    });
    expect(raised.status).toBe(200);
    expect(await say(onB, 'three, allowed')).toBe('done');
    expect(await say(onA, 'four')).toBe('QUOTA_EXCEEDED');
    onA.close();
    onB.close();
  });

  test('a user deactivated through one instance has their sockets on the other closed with 4001 and their tokens refused', async () => {
    const me = await createClient(b.url).signUp();
    const onB = await connectAuthenticated(b.wsUrl, me.conversationId, me.access);
    const res = await createClient(a.url).request('PATCH', `/api/admin/users/${me.user.id}`, {
      token: staff.access,
      body: { is_active: false },
    });
    expect(res.status).toBe(200);
    expect(res.body.is_active).toBe(false);
    expect((await onB.closed).code).toBe(4001);
    expect((await createClient(b.url).request('GET', '/api/auth/me', { token: me.access })).status).toBe(401);
    const refresh = await createClient(b.url).request('POST', '/api/token/refresh', {
      body: { refresh: me.refresh },
    });
    expect(refresh.status).toBe(401);
  });
});
