import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { SERVICES } from '../support/backends';
import { createClient } from '../support/client';
import { type Instance, startInstances } from '../support/instances';
import { connectAuthenticated } from '../support/ws';

/**
 * SPEC §11: a reply whose instance dies ends for the sockets that follow it
 * elsewhere with INTERNAL_ERROR within AI_TIMEOUT_SECONDS; its user message stays
 * stored and its lock expires. Needs two real processes: PostgreSQL + Redis only.
 */
describe.if(Boolean(SERVICES.databaseUrl && SERVICES.redisUrl))(
  'the instance running a reply is killed',
  () => {
    let pair: Awaited<ReturnType<typeof startInstances>>;
    let a: Instance;
    let b: Instance;

    beforeAll(async () => {
      pair = await startInstances({ AI_TIMEOUT_SECONDS: '2', CHAT_RATE_LIMIT: '1000' });
      [a, b] = pair.instances;
    });
    afterAll(() => pair.stop());

    test('followers elsewhere get INTERNAL_ERROR within the AI timeout; the user message stays; the lock expires', async () => {
      const { processes, prefix } = pair as { processes?: { kill(signal: string): void }[]; prefix?: string };
      const api = createClient(b.url);
      const me = await api.signUp();
      const onA = await connectAuthenticated(a.wsUrl, me.conversationId, me.access);
      const onB = await connectAuthenticated(b.wsUrl, me.conversationId, me.access);
      onA.send({ type: 'chat.message', content: 'doomed [stub:slow:400]' });
      await onB.next((f) => f.type === 'chat.stream');
      processes?.[0]?.kill('SIGKILL');
      const killedAt = performance.now();
      const end = await onB.next((f) => f.type !== 'ping' && f.type !== 'chat.stream', 5000);
      expect(end).toMatchObject({ type: 'chat.error', code: 'INTERNAL_ERROR' });
      // Within AI_TIMEOUT_SECONDS (2 s), with a little room for the event loops involved.
      expect(performance.now() - killedAt).toBeLessThan(2300);
      const stored = await api.request('GET', `/api/conversations/${me.conversationId}/messages`, {
        token: me.access,
      });
      expect(stored.body.items.map((m: { role: string }) => m.role)).toEqual(['user']);
      // The lock has a time-to-live and nobody renews it any more.
      const redis = new Redis(SERVICES.redisUrl as string, { keyPrefix: prefix });
      const ttl = await redis.pttl(`lock:conversation:${me.conversationId}`);
      redis.disconnect();
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(10_000);
      // Refused as busy until then; admitted once it has expired.
      const waitFrom = performance.now();
      for (;;) {
        onB.send({ type: 'chat.message', content: 'after the crash' });
        const { final } = await onB.reply();
        if (final.done) break;
        expect(final.code).toBe('ALREADY_PROCESSING');
        expect(performance.now() - waitFrom).toBeLessThan(12_000);
        await Bun.sleep(500);
      }
      onB.close();
    }, 30_000);
  },
);
