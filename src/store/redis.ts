import { Redis } from 'ioredis';
import type { Admission, Store } from './store';
import { StoreUnavailableError } from './store';

// Sliding window on a sorted set, timed by the Redis clock so every instance agrees.
const ADMIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}`;

const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n`;

const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const SCRIPTS = { chatAdmit: ADMIT, chatIncrement: INCREMENT, chatExtend: EXTEND, chatRelease: RELEASE };

/**
 * Redis adapter. Commands fail at once while Redis is away (no offline queue, no
 * retries) and reconnection is attempted every 250 ms, so callers see a clean
 * StoreUnavailableError and everything works again as soon as Redis is back.
 */
export class RedisStore implements Store {
  readonly kind = 'redis';
  private readonly redis: Redis;

  constructor(url: string, keyPrefix: string) {
    this.redis = new Redis(url, {
      keyPrefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      commandTimeout: 2000,
      retryStrategy: () => 250,
      lazyConnect: true,
    });
    // Connection errors surface through the failing commands; without a listener
    // ioredis would print every reconnect attempt.
    this.redis.on('error', () => {});
    // Sent once, then called by SHA (EVALSHA), not re-sent with every call.
    for (const [name, lua] of Object.entries(SCRIPTS))
      this.redis.defineCommand(name, { numberOfKeys: 1, lua });
  }

  private script(name: keyof typeof SCRIPTS, key: string, ...args: (string | number)[]): Promise<unknown> {
    return (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]?.(
      key,
      ...args,
    ) as Promise<unknown>;
  }

  /** Waits for the first connection; start-up continues (degraded) if it fails. */
  async connect() {
    await this.redis.connect().catch(() => {});
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw new StoreUnavailableError(error);
    }
  }

  ping() {
    return this.run(async () => {
      await this.redis.ping();
    });
  }

  set(key: string, value: string, ttlMs: number) {
    return this.run(async () => {
      await this.redis.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
    });
  }

  exists(key: string) {
    return this.run(async () => (await this.redis.exists(key)) === 1);
  }

  get(key: string) {
    return this.run(() => this.redis.get(key));
  }

  del(key: string) {
    return this.run(async () => {
      await this.redis.del(key);
    });
  }

  increment(key: string, ttlMs: number) {
    return this.run(async () => Number(await this.script('chatIncrement', key, Math.ceil(ttlMs))));
  }

  ttl(key: string) {
    return this.run(async () => Math.max(0, await this.redis.pttl(key)));
  }

  admit(key: string, limit: number, windowMs: number): Promise<Admission> {
    return this.run(async () => {
      const [allowed, retryAfterMs] = (await this.script(
        'chatAdmit',
        key,
        limit,
        windowMs,
        crypto.randomUUID(),
      )) as [number, number];
      return { allowed: allowed === 1, retryAfterMs: Number(retryAfterMs) };
    });
  }

  acquire(key: string, owner: string, ttlMs: number) {
    return this.run(async () => (await this.redis.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK');
  }

  extend(key: string, owner: string, ttlMs: number) {
    return this.run(async () => Number(await this.script('chatExtend', key, owner, ttlMs)) === 1);
  }

  release(key: string, owner: string) {
    return this.run(async () => {
      await this.script('chatRelease', key, owner);
    });
  }

  /** QUIT politely, but never wait on a Redis that does not answer. */
  async close() {
    const quit = this.redis.quit().catch(() => {});
    await Promise.race([quit, Bun.sleep(1000)]);
    this.redis.disconnect();
  }
}
