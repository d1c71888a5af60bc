import { describe, expect, test } from 'bun:test';
import { CLOSE } from '../../../src/modules/chat/protocol';
import { createConnectionRegistry } from '../../../src/modules/chat/registry';
import { ChatConnection } from '../../../src/modules/chat/socket';

/** A connection on a recording transport (Bun's socket is exercised by the end-to-end tests). */
const connection = (userId?: string) => {
  const sent: string[] = [];
  const closes: number[] = [];
  const c = new ChatConnection(crypto.randomUUID());
  c.attach({
    send: (frame) => sent.push(frame),
    close: (code = 1000) => void closes.push(code),
    cork: (callback) => callback(),
  });
  if (userId) c.signIn(userId);
  return { c, sent, closes };
};

describe('connection registry', () => {
  test('keeps count through adds and removes in any order, ignoring repeats and strangers', async () => {
    const registry = createConnectionRegistry(60_000);
    const [a, b, c, d] = [connection(), connection(), connection(), connection()];
    for (const x of [a, b, c]) registry.add(x.c);
    registry.add(b.c); // already registered
    expect(registry.size).toBe(3);
    registry.remove(b.c); // middle
    registry.remove(b.c); // twice
    registry.remove(d.c); // never added
    expect(registry.size).toBe(2);
    registry.remove(c.c); // newest
    registry.add(d.c);
    expect(registry.size).toBe(2);
    // Shutdown reaches exactly the sockets still registered.
    await registry.shutdown(0, () => {});
    expect(a.closes).toEqual([CLOSE.goingAway]);
    expect(d.closes).toEqual([CLOSE.goingAway]);
    expect(b.closes).toEqual([]);
    expect(c.closes).toEqual([]);
    expect(registry.size).toBe(0);
  });

  test('matches a Set through random adds and removes: shutdown closes exactly the registered sockets', async () => {
    for (let round = 0; round < 20; round++) {
      const registry = createConnectionRegistry(60_000);
      const pool = Array.from({ length: 8 }, () => connection());
      const model = new Set<ReturnType<typeof connection>>();
      for (let i = 0; i < 60; i++) {
        const x = pool[Math.floor(Math.random() * pool.length)] as ReturnType<typeof connection>;
        if (Math.random() < 0.5) {
          registry.add(x.c);
          model.add(x);
        } else {
          registry.remove(x.c);
          model.delete(x);
        }
        expect(registry.size).toBe(model.size);
      }
      await registry.shutdown(0, () => {});
      for (const x of pool) expect(x.closes).toEqual(model.has(x) ? [CLOSE.goingAway] : []);
    }
  });

  test('each heartbeat pings authenticated sockets and closes those silent for two intervals', async () => {
    const registry = createConnectionRegistry(50);
    const quiet = connection('user-1');
    const chatty = connection('user-2');
    const anonymous = connection();
    for (const x of [quiet, chatty, anonymous]) registry.add(x.c);
    // The silent socket is closed during a tick that goes on to visit the others.
    quiet.c.lastSeen = Date.now() - 1_000;
    for (let i = 0; i < 4; i++) {
      chatty.c.lastSeen = Date.now();
      await Bun.sleep(50);
    }
    expect(quiet.closes).toEqual([CLOSE.heartbeatTimeout]);
    expect(chatty.sent.length).toBeGreaterThanOrEqual(2);
    expect(chatty.sent.every((frame) => JSON.parse(frame).type === 'ping')).toBe(true);
    expect(chatty.closes).toEqual([]);
    expect(anonymous.sent).toEqual([]);
    await registry.shutdown(0, () => {});
  });

  test('a silent socket is closed once two intervals have passed, not at the next ping after that', async () => {
    const interval = 200;
    const registry = createConnectionRegistry(interval);
    const quiet = connection('user-1');
    registry.add(quiet.c);
    // Silent since just after the registry's timer started: a timer that checked only
    // once an interval would first see it silent for two intervals at 3 × 200 ms.
    await Bun.sleep(20);
    quiet.c.lastSeen = Date.now();
    await Bun.sleep(2 * interval - 40);
    expect(quiet.closes).toEqual([]);
    await Bun.sleep(140);
    expect(quiet.closes).toEqual([CLOSE.heartbeatTimeout]);
    await registry.shutdown(0, () => {});
  });
});
