import { Redis } from 'ioredis';
import type { Claim, LockSpec, RateSpec, Store } from './store';
import { StoreUnavailableError } from './store';

// Lock, then a sliding window on a sorted set timed by the Redis clock (so every
// instance agrees), then the stamp: KEYS lock, rate, stamp; ARGV owner, lock ttl,
// limit, window, a unique event id. A refusal takes and records nothing.
const CLAIM = `
local stamp = redis.call('GET', KEYS[3]) or ''
if redis.call('EXISTS', KEYS[1]) == 1 then return {'busy', stamp} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {'limited', stamp} end
redis.call('ZADD', KEYS[2], now, now .. '-' .. ARGV[5])
redis.call('PEXPIRE', KEYS[2], window)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'claimed', stamp}`;

const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n`;

const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
return 1`;

const SCRIPTS = {
  chatClaim: { keys: 3, lua: CLAIM },
  chatIncrement: { keys: 1, lua: INCREMENT },
  chatExtend: { keys: 1, lua: EXTEND },
  chatRelease: { keys: 2, lua: RELEASE },
};

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
    for (const [name, { keys, lua }] of Object.entries(SCRIPTS))
      this.redis.defineCommand(name, { numberOfKeys: keys, lua });
  }

  /** Keys first, then arguments, as the script's `keys` count says. */
  private script(name: keyof typeof SCRIPTS, ...keysThenArgs: (string | number)[]): Promise<unknown> {
    return (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]?.(
      ...keysThenArgs,
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

  acquire(key: string, owner: string, ttlMs: number) {
    return this.run(async () => (await this.redis.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK');
  }

  claim(lock: LockSpec, rate: RateSpec, stampKey: string): Promise<Claim> {
    return this.run(async () => {
      const [outcome, stamp] = (await this.script(
        'chatClaim',
        lock.key,
        rate.key,
        stampKey,
        lock.owner,
        Math.max(1, Math.ceil(lock.ttlMs)),
        rate.limit,
        rate.windowMs,
        crypto.randomUUID(),
      )) as [Claim['outcome'], string];
      return { outcome, stamp: stamp || null };
    });
  }

  extend(key: string, owner: string, ttlMs: number) {
    return this.run(async () => Number(await this.script('chatExtend', key, owner, ttlMs)) === 1);
  }

  release(key: string, owner: string, stamp?: { key: string; ttlMs: number }) {
    return this.run(
      async () =>
        Number(
          await this.script(
            'chatRelease',
            key,
            // The script always takes two keys; without a stamp the second is unused.
            stamp?.key ?? key,
            owner,
            stamp ? Math.max(1, Math.ceil(stamp.ttlMs)) : '',
          ),
        ) === 1,
    );
  }

  /** QUIT politely, but never wait on a Redis that does not answer. */
  async close() {
    const quit = this.redis.quit().catch(() => {});
    await Promise.race([quit, Bun.sleep(1000)]);
    this.redis.disconnect();
  }
}
