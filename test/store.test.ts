import { afterAll, describe, expect, test } from 'bun:test';
import type { Store } from '../src/store';
import { MemoryStore } from '../src/store/memory';
import { RedisStore } from '../src/store/redis';
import { SERVICES, uniqueName } from './support/backends';

// The same contract for both adapters; Redis runs when REDIS_URL is set.
const adapters: [string, () => Store][] = [['in-process', () => new MemoryStore()]];
if (SERVICES.redisUrl) {
  const url = SERVICES.redisUrl;
  adapters.push([
    'redis',
    () => {
      const store = new RedisStore(url, `${uniqueName('storetest')}:`);
      void store.connect();
      return store;
    },
  ]);
}

describe.each(adapters)('%s store', (_, make) => {
  const store = make();
  afterAll(() => store.close());
  const key = () => uniqueName('k');

  test('set/get/exists/del with a time-to-live', async () => {
    const k = key();
    await store.set(k, 'v', 200);
    expect(await store.get(k)).toBe('v');
    expect(await store.exists(k)).toBe(true);
    const ttl = await store.ttl(k);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(200);
    await Bun.sleep(250);
    expect(await store.exists(k)).toBe(false);
    expect(await store.ttl(k)).toBe(0);
    await store.set(k, 'v', 1000);
    await store.del(k);
    expect(await store.get(k)).toBeNull();
  });

  test('increment counts and restarts the time-to-live', async () => {
    const k = key();
    expect(await store.increment(k, 1000)).toBe(1);
    expect(await store.increment(k, 1000)).toBe(2);
    expect(await store.get(k)).toBe('2');
  });

  test('admit allows `limit` events per sliding window, atomically', async () => {
    const k = key();
    const results = await Promise.all(Array.from({ length: 8 }, () => store.admit(k, 5, 300)));
    expect(results.filter((r) => r.allowed)).toHaveLength(5);
    const refused = results.find((r) => !r.allowed);
    expect(refused?.retryAfterMs).toBeGreaterThan(0);
    expect(refused?.retryAfterMs).toBeLessThanOrEqual(300);
    await Bun.sleep(350);
    expect((await store.admit(k, 5, 300)).allowed).toBe(true);
  });

  test('refused events do not count', async () => {
    const k = key();
    for (let i = 0; i < 2; i++) await store.admit(k, 2, 400);
    for (let i = 0; i < 5; i++) expect((await store.admit(k, 2, 400)).allowed).toBe(false);
    await Bun.sleep(450);
    expect((await store.admit(k, 2, 400)).allowed).toBe(true);
    expect((await store.admit(k, 2, 400)).allowed).toBe(true);
  });

  test('a lock has one owner, is released only by it, and expires', async () => {
    const k = key();
    expect(await store.acquire(k, 'a', 300)).toBe(true);
    expect(await store.acquire(k, 'b', 300)).toBe(false);
    await store.release(k, 'b');
    expect(await store.acquire(k, 'b', 300)).toBe(false);
    expect(await store.extend(k, 'a', 600)).toBe(true);
    expect(await store.extend(k, 'b', 600)).toBe(false);
    await store.release(k, 'a');
    expect(await store.acquire(k, 'b', 100)).toBe(true);
    await Bun.sleep(150);
    expect(await store.acquire(k, 'c', 100)).toBe(true);
  });

  test('only one of many concurrent acquirers wins', async () => {
    const k = key();
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => store.acquire(k, `o${i}`, 1000)));
    expect(wins.filter(Boolean)).toHaveLength(1);
  });
});

describe('redis store while Redis is unreachable', () => {
  test('every operation fails fast with StoreUnavailableError', async () => {
    const { StoreUnavailableError } = await import('../src/store');
    const store = new RedisStore('redis://127.0.0.1:1', 'x:');
    await store.connect();
    const started = performance.now();
    for (const op of [
      () => store.get('k'),
      () => store.set('k', 'v', 10),
      () => store.admit('k', 1, 10),
      () => store.ping(),
    ])
      await expect(op()).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(1000);
    await store.close();
  });
});
