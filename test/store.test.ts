import { afterAll, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { type Store, StoreUnavailableError } from '../src/store';
import { MemoryStore } from '../src/store/memory';
import { RedisStore } from '../src/store/redis';
import { SERVICES, uniqueName } from './support/backends';
import { rejection } from './support/wait';

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

  // claim = lock, then sliding-window rate limit, then the stamp, in one atomic step.
  const claim = (
    lock: string,
    owner: string,
    rate: string,
    limit: number,
    windowMs: number,
    stamp = `${lock}:s`,
  ) => store.claim({ key: lock, owner, ttlMs: 1000 }, { key: rate, limit, windowMs }, stamp);

  test('claim admits `limit` events per sliding window, atomically', async () => {
    const rate = key();
    // Distinct locks: only the rate limit decides.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => claim(key(), `o${i}`, rate, 5, 300)),
    );
    expect(results.filter((r) => r.outcome === 'claimed')).toHaveLength(5);
    expect(results.filter((r) => r.outcome === 'limited')).toHaveLength(3);
    await Bun.sleep(350);
    expect((await claim(key(), 'o', rate, 5, 300)).outcome).toBe('claimed');
  });

  test('a limited claim says when the window has room again: when its oldest event leaves it', async () => {
    const rate = key();
    const firstAt = Date.now();
    expect((await claim(key(), 'o', rate, 2, 1000)).outcome).toBe('claimed');
    await Bun.sleep(300);
    expect((await claim(key(), 'o', rate, 2, 1000)).outcome).toBe('claimed');
    const limited = await claim(key(), 'o', rate, 2, 1000);
    expect(limited.outcome).toBe('limited');
    // The first event leaves the window 1000 ms after it was taken: ~700 ms from now
    // (the second, 300 ms later, would say ~1000).
    const left = firstAt + 1000 - Date.now();
    expect(limited.retryAfterMs).toBeGreaterThan(left - 100);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(left + 100);
    await Bun.sleep((limited.retryAfterMs as number) + 20);
    expect((await claim(key(), 'o', rate, 2, 1000)).outcome).toBe('claimed');
  });

  test('refused claims record nothing: no rate event, no lock', async () => {
    const rate = key();
    for (let i = 0; i < 2; i++) expect((await claim(key(), 'o', rate, 2, 400)).outcome).toBe('claimed');
    const lock = key();
    for (let i = 0; i < 5; i++) expect((await claim(lock, 'o', rate, 2, 400)).outcome).toBe('limited');
    // The limited claims did not take the lock.
    expect(await store.acquire(lock, 'other', 100)).toBe(true);
    await Bun.sleep(450);
    expect((await claim(key(), 'o', rate, 2, 400)).outcome).toBe('claimed');
    expect((await claim(key(), 'o', rate, 2, 400)).outcome).toBe('claimed');
  });

  test('a busy lock wins over the rate limit and costs no rate event', async () => {
    const lock = key();
    const rate = key();
    expect((await claim(lock, 'a', rate, 1, 10_000)).outcome).toBe('claimed');
    // Busy: the window was not looked at, so no room is reported.
    expect(await claim(lock, 'b', key(), 1, 10_000)).toEqual({ outcome: 'busy', stamp: null });
    // Busy even though that user's window is full: the lock is checked first.
    expect((await claim(lock, 'c', rate, 1, 10_000)).outcome).toBe('busy');
    const fresh = key();
    expect((await claim(lock, 'd', fresh, 1, 10_000)).outcome).toBe('busy');
    expect(await store.release(lock, 'a')).toBe(true);
    expect((await claim(lock, 'd', fresh, 1, 10_000)).outcome).toBe('claimed');
  });

  test('only one of many concurrent claimers of a lock wins', async () => {
    const lock = key();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => claim(lock, `o${i}`, key(), 100, 10_000)),
    );
    expect(results.filter((r) => r.outcome === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'busy')).toHaveLength(9);
  });

  test('a stamped release leaves the owner as the stamp the next claim reads', async () => {
    const lock = key();
    const stamp = key();
    expect(await claim(lock, 'a', key(), 9, 10_000, stamp)).toEqual({
      outcome: 'claimed',
      stamp: null,
      room: 8,
    });
    expect(await store.release(lock, 'a', { key: stamp, ttlMs: 10_000, seen: null })).toBe(true);
    expect(await claim(lock, 'b', key(), 9, 10_000, stamp)).toEqual({
      outcome: 'claimed',
      stamp: 'a',
      room: 8,
    });
    // Someone else's release neither frees the lock nor moves the stamp.
    expect(await store.release(lock, 'a', { key: stamp, ttlMs: 10_000, seen: 'a' })).toBe(false);
    expect((await claim(lock, 'c', key(), 9, 10_000, stamp)).outcome).toBe('busy');
    expect(await store.release(lock, 'b', { key: stamp, ttlMs: 10_000, seen: 'a' })).toBe(true);
    expect((await claim(lock, 'c', key(), 9, 10_000, stamp)).stamp).toBe('b');
    // A release without a stamp leaves the last one alone; the stamp expires by itself.
    expect(await store.release(lock, 'c')).toBe(true);
    expect((await claim(lock, 'd', key(), 9, 10_000, stamp)).stamp).toBe('b');
    await store.release(lock, 'd', { key: stamp, ttlMs: 100, seen: 'b' });
    await Bun.sleep(150);
    expect((await claim(lock, 'e', key(), 9, 10_000, stamp)).stamp).toBeNull();
  });

  test('a stamp changed while the lock was held is not overwritten by the release', async () => {
    const lock = key();
    const stamp = key();
    await store.set(stamp, 'before', 10_000);
    expect((await claim(lock, 'a', key(), 9, 10_000, stamp)).stamp).toBe('before');
    await store.set(stamp, 'changed', 10_000);
    // Released, but not stamped: the claim saw 'before'.
    expect(await store.release(lock, 'a', { key: stamp, ttlMs: 10_000, seen: 'before' })).toBe(false);
    expect(await store.get(stamp)).toBe('changed');
    expect((await claim(lock, 'b', key(), 9, 10_000, stamp)).outcome).toBe('claimed');
  });

  test('claims and releases made together are decided in call order', async () => {
    const rate = key();
    const locks = Array.from({ length: 8 }, () => key());
    // One turn of the event loop: the Redis adapter sends these as one script call.
    const results = await Promise.all(locks.map((lock, i) => claim(lock, `o${i}`, rate, 5, 10_000)));
    expect(results.map((r) => r.outcome).join()).toBe(
      'claimed,claimed,claimed,claimed,claimed,limited,limited,limited',
    );
    // Each claim reports the room its window had left just after it.
    expect(results.map((r) => r.room)).toEqual([4, 3, 2, 1, 0, 0, 0, 0]);
    const stamp = key();
    const released = await Promise.all([
      store.release(locks[0] as string, 'o0', { key: stamp, ttlMs: 10_000, seen: null }),
      store.release(locks[1] as string, 'not the owner'),
      store.release(locks[2] as string, 'o2'),
      store.release(locks[6] as string, 'o6'), // limited: never held
    ]);
    expect(released).toEqual([true, false, true, false]);
    // The same lock released twice together: only the first release is its owner's.
    const twice = await Promise.all([
      store.release(locks[3] as string, 'o3'),
      store.release(locks[3] as string, 'o3'),
    ]);
    expect(twice).toEqual([true, false]);
    expect(await store.get(stamp)).toBe('o0');
    expect((await claim(locks[0] as string, 'x', key(), 9, 10_000)).outcome).toBe('claimed');
    expect((await claim(locks[1] as string, 'x', key(), 9, 10_000)).outcome).toBe('busy');
  });

  test('a burst larger than one slice of a script call is counted exactly', async () => {
    const rate = key();
    const results = await Promise.all(
      Array.from({ length: 2500 }, () => claim(key(), 'o', rate, 2200, 10_000)),
    );
    expect(results.filter((r) => r.outcome === 'claimed')).toHaveLength(2200);
    expect(results.slice(2200).every((r) => r.outcome === 'limited')).toBe(true);
    // Every admitted event was recorded: the window stays full for the next call.
    expect((await claim(key(), 'o', rate, 2200, 10_000)).outcome).toBe('limited');
    expect((await claim(key(), 'o', rate, 2201, 10_000)).outcome).toBe('claimed');
  });

  test('a claimed lock expires', async () => {
    const lock = key();
    expect(
      (
        await store.claim(
          { key: lock, owner: 'a', ttlMs: 100 },
          { key: key(), limit: 9, windowMs: 1000 },
          key(),
        )
      ).outcome,
    ).toBe('claimed');
    expect((await claim(lock, 'b', key(), 9, 1000)).outcome).toBe('busy');
    await Bun.sleep(150);
    expect((await claim(lock, 'b', key(), 9, 1000)).outcome).toBe('claimed');
  });

  test('a lock has one owner, is released only by it, and expires', async () => {
    const k = key();
    expect(await store.acquire(k, 'a', 300)).toBe(true);
    expect(await store.acquire(k, 'b', 300)).toBe(false);
    expect(await store.release(k, 'b')).toBe(false);
    expect(await store.acquire(k, 'b', 300)).toBe(false);
    expect(await store.extend(k, 'a', 600)).toBe(true);
    expect(await store.extend(k, 'b', 600)).toBe(false);
    expect(await store.release(k, 'a')).toBe(true);
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

describe.skipIf(!SERVICES.redisUrl)('redis store batching', () => {
  const prefix = `${uniqueName('batchtest')}:`;
  const store = new RedisStore(SERVICES.redisUrl ?? '', prefix);
  const raw = new Redis(SERVICES.redisUrl ?? '');
  afterAll(async () => {
    await store.close();
    raw.disconnect();
  });
  const key = () => uniqueName('k');
  const claim = (lock: string, rate: string) =>
    store.claim({ key: lock, owner: 'o', ttlMs: 10_000 }, { key: rate, limit: 9, windowMs: 10_000 }, key());

  test('the claims of one turn are one script call, and so are its releases', async () => {
    await store.connect();
    // Loads both scripts, so what follows is EVALSHA only.
    const warm = key();
    await claim(warm, key());
    await store.release(warm, 'o');
    const monitor = await raw.monitor();
    const calls: string[][] = [];
    // MONITOR also lists the commands a script runs: keep the calls themselves.
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (/^eval/i.test(args[0] ?? '') && args.some((a) => a.startsWith(prefix))) calls.push(args);
    });
    const locks = Array.from({ length: 20 }, () => key());
    const claims = await Promise.all(locks.map((lock) => claim(lock, key())));
    expect(claims.every((c) => c.outcome === 'claimed')).toBe(true);
    expect(await Promise.all(locks.map((lock) => store.release(lock, 'o')))).toEqual(
      Array<boolean>(20).fill(true),
    );
    await Bun.sleep(50); // MONITOR reports after the fact
    monitor.disconnect();
    expect(calls.map((args) => [args[0]?.toLowerCase(), args[2]])).toEqual([
      ['evalsha', '60'], // 20 claims × lock, rate, stamp keys
      ['evalsha', '40'], // 20 releases × lock, stamp keys
    ]);
  });

  test('a claim whose window key is broken fails alone; the others of its call go through and it takes nothing', async () => {
    const broken = key();
    await raw.set(`${prefix}${broken}`, 'not a sorted set');
    const [lockA, lockB, lockC] = [key(), key(), key()];
    const results = await Promise.allSettled([
      claim(lockA, key()),
      claim(lockB, broken), // the rate window key holds a string: WRONGTYPE
      claim(lockC, key()),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
    expect(await raw.exists(`${prefix}${lockB}`)).toBe(0);
    expect(await raw.get(`${prefix}${lockA}`)).toBe('o');

    expect(await Promise.all([store.release(lockA, 'o'), store.release(lockC, 'o')])).toEqual([true, true]);
    expect(await raw.exists(`${prefix}${lockA}`, `${prefix}${lockC}`)).toBe(0);
  });
});

describe('redis store while Redis is unreachable', () => {
  test('every operation fails fast with StoreUnavailableError', async () => {
    const store = new RedisStore('redis://127.0.0.1:1', 'x:');
    await store.connect();
    const started = performance.now();
    for (const op of [
      () => store.get('k'),
      () => store.set('k', 'v', 10),
      () => store.claim({ key: 'l', owner: 'o', ttlMs: 10 }, { key: 'r', limit: 1, windowMs: 10 }, 's'),
      () => store.release('l', 'o'),
      () => store.ping(),
    ])
      expect(await rejection(op())).toBeInstanceOf(StoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(1000);
    await store.close();
  });
});
