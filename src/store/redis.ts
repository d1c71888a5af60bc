import { Redis } from 'ioredis';
import { batchedPerTurn } from '../lib/batch';
import type { Claim, LockSpec, RateSpec, StampSpec, Store } from './store';
import { StoreUnavailableError } from './store';

// Lua's unpack spreads a bounded number of values: multi-key calls go in slices.
// values(offset, stride): MGET of KEYS[offset], KEYS[offset + stride], …
const SLICED = `
local SLICE = 1000
local function values(offset, stride)
  local n, all = #KEYS / stride, {}
  for from = 1, n, SLICE do
    local keys = {}
    for i = from, math.min(from + SLICE - 1, n) do keys[#keys + 1] = KEYS[(i - 1) * stride + offset] end
    local part = redis.call('MGET', unpack(keys))
    for j = 1, #keys do all[from + j - 1] = part[j] end
  end
  return all
end`;

// The claims of one call, decided in call order as if made one by one: the lock, then
// a sliding window on a sorted set timed by the Redis clock (so every instance
// agrees), then the stamp. A refusal takes and records nothing. Each window is
// trimmed and counted once per call, and its new events go in with one ZADD, so a
// burst of claims costs a few commands per user rather than seven per claim.
// KEYS: lock, rate, stamp per claim. ARGV: owner, lock ttl, limit, window, a unique
// event id per claim (claims sharing a window share its length). Answers per claim
// {outcome, stamp, room left in the window} (limited: and the milliseconds until it
// has room again), or {'busy', stamp} (the window was not
// looked at). A window key of the wrong type fails its own claims with
// {'error', message} and no others.
const CLAIMS = `${SLICED}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local locked, stamps = values(1, 3), values(3, 3)
local taken, counts, events, windows, results, oldest = {}, {}, {}, {}, {}, {}
for i = 1, #KEYS / 3 do
  local lock, rate = KEYS[i * 3 - 2], KEYS[i * 3 - 1]
  local owner, ttl, limit, window, event = unpack(ARGV, i * 5 - 4, i * 5)
  local stamp = stamps[i] or ''
  if locked[i] or taken[lock] then
    results[i] = {'busy', stamp}
  else
    if counts[rate] == nil then
      local ok, count = pcall(function()
        redis.call('ZREMRANGEBYSCORE', rate, '-inf', now - tonumber(window))
        return redis.call('ZCARD', rate)
      end)
      counts[rate] = ok and count or {type(count) == 'table' and count.err or tostring(count)}
    end
    local count = counts[rate]
    if type(count) == 'table' then
      results[i] = {'error', count[1]}
    elseif count >= tonumber(limit) then
      -- The window admits again once its oldest stored event leaves it (asked once per call).
      if oldest[rate] == nil then
        oldest[rate] = tonumber(redis.call('ZRANGE', rate, 0, 0, 'WITHSCORES')[2] or now)
      end
      results[i] = {'limited', stamp, 0, oldest[rate] + tonumber(window) - now}
    else
      counts[rate] = count + 1
      if not events[rate] then events[rate] = {}; windows[#windows + 1] = {rate, window} end
      table.insert(events[rate], now)
      table.insert(events[rate], now .. '-' .. event)
      redis.call('SET', lock, owner, 'PX', ttl)
      taken[lock] = true
      results[i] = {'claimed', stamp, tonumber(limit) - count - 1}
    end
  end
end
for _, w in ipairs(windows) do
  local list = events[w[1]]
  for from = 1, #list, 2 * SLICE do
    redis.call('ZADD', w[1], unpack(list, from, math.min(from + 2 * SLICE - 1, #list)))
  end
  redis.call('PEXPIRE', w[1], w[2])
end
return results`;

const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n`;

const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

// The releases of one call: each only if its owner still holds the lock, then the
// stamp if it still holds what the claim saw. KEYS: lock, stamp per release; ARGV:
// owner, stamp ttl ('' for no stamp), the stamp seen ('' for none) per release.
// Answers per release 1 released (and stamped, when asked), 2 released but not
// stamped (the stamp changed meanwhile), 0 not held.
const RELEASES = `${SLICED}
local held, released, results = values(1, 2), {}, {}
for i = 1, #KEYS / 2 do
  local lock, stampKey = KEYS[i * 2 - 1], KEYS[i * 2]
  local owner, ttl, seen = ARGV[i * 3 - 2], ARGV[i * 3 - 1], ARGV[i * 3]
  if held[i] == owner and not released[lock] then
    redis.call('DEL', lock)
    released[lock] = true
    results[i] = 1
    if ttl ~= '' then
      if (redis.call('GET', stampKey) or '') == seen then
        redis.call('SET', stampKey, owner, 'PX', ttl)
      else
        results[i] = 2
      end
    end
  else
    results[i] = 0
  end
end
return results`;

// `keys: 'counted'`: the number of keys is the call's first argument (batches).
const SCRIPTS = {
  chatClaims: { keys: 'counted', lua: CLAIMS },
  chatIncrement: { keys: 1, lua: INCREMENT },
  chatExtend: { keys: 1, lua: EXTEND },
  chatReleases: { keys: 'counted', lua: RELEASES },
} as const;

interface ReleaseSpec {
  key: string;
  owner: string;
  stamp?: StampSpec;
}

// A batched script call fails only when Redis is away: no single item to blame.
const noRetryAlone = () => false;

/**
 * Redis adapter. Commands fail at once while Redis is away (no offline queue, no
 * retries) and reconnection is attempted every 250 ms, so callers see a clean
 * StoreUnavailableError and everything works again as soon as Redis is back.
 */
export class RedisStore implements Store {
  readonly kind = 'redis';
  private readonly redis: Redis;
  /** The connection in subscriber mode, opened with the first subscription. */
  private subscriber: Redis | undefined;
  private readonly listeners = new Map<string, Set<(message: string) => void>>();

  constructor(
    url: string,
    private readonly keyPrefix: string,
  ) {
    this.redis = new Redis(url, {
      keyPrefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Under SPEC §10's 2 s for every answer, with room for the database's part.
      connectTimeout: 1000,
      commandTimeout: 1000,
      retryStrategy: () => 250,
      lazyConnect: true,
    });
    // Connection errors surface through the failing commands; without a listener
    // ioredis would print every reconnect attempt.
    this.redis.on('error', () => {});
    // Sent once, then called by SHA (EVALSHA), not re-sent with every call.
    for (const [name, { keys, lua }] of Object.entries(SCRIPTS))
      this.redis.defineCommand(name, { numberOfKeys: keys === 'counted' ? undefined : keys, lua });
  }

  /**
   * The claims (and releases) of one event-loop turn go to Redis as one script call:
   * when 200 chat messages arrive at once that is one round trip, not 200. A failure
   * of one item comes back in its own slot; a failed call means Redis is away, and
   * every caller of the batch gets that at once.
   */
  private readonly claims = batchedPerTurn(async (batch: Parameters<RedisStore['claim']>[]) => {
    const keys = batch.flatMap(([lock, rate, stampKey]) => [lock.key, rate.key, stampKey]);
    const args = batch.flatMap(([lock, rate]) => [
      lock.owner,
      Math.max(1, Math.ceil(lock.ttlMs)),
      rate.limit,
      rate.windowMs,
      crypto.randomUUID(),
    ]);
    return (await this.script('chatClaims', keys.length, ...keys, ...args)) as [
      string,
      string,
      number?,
      number?,
    ][];
  }, noRetryAlone);

  private readonly releases = batchedPerTurn(async (batch: ReleaseSpec[]) => {
    // Without a stamp the second key is unused: the lock key stands in for it.
    const keys = batch.flatMap(({ key, stamp }) => [key, stamp?.key ?? key]);
    const args = batch.flatMap(({ owner, stamp }) => [
      owner,
      stamp ? Math.max(1, Math.ceil(stamp.ttlMs)) : '',
      stamp?.seen ?? '',
    ]);
    return (await this.script('chatReleases', keys.length, ...keys, ...args)) as number[];
  }, noRetryAlone);

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
      const [outcome, detail, room, retryAfterMs] = await this.claims([lock, rate, stampKey]);
      if (outcome === 'error') throw new Error(detail);
      const claim: Claim = { outcome: outcome as Claim['outcome'], stamp: detail || null };
      if (typeof room === 'number') claim.room = room;
      if (typeof retryAfterMs === 'number') claim.retryAfterMs = retryAfterMs;
      return claim;
    });
  }

  extend(key: string, owner: string, ttlMs: number) {
    return this.run(async () => Number(await this.script('chatExtend', key, owner, ttlMs)) === 1);
  }

  release(key: string, owner: string, stamp?: StampSpec) {
    return this.run(async () => (await this.releases({ key, owner, stamp })) === 1);
  }

  publish(channel: string, message: string) {
    // keyPrefix does not apply to channels: the prefix is added here.
    return this.run(async () => {
      await this.redis.publish(this.keyPrefix + channel, message);
    });
  }

  async subscribe(channel: string, listener: (message: string) => void) {
    const name = this.keyPrefix + channel;
    if (!this.subscriber) {
      // Re-subscribes by itself after a reconnect (ioredis's autoResubscribe).
      this.subscriber = this.redis.duplicate({ keyPrefix: '', lazyConnect: false, enableOfflineQueue: true });
      this.subscriber.on('error', () => {});
      this.subscriber.on('message', (from: string, message: string) => {
        for (const listen of this.listeners.get(from) ?? []) listen(message);
      });
    }
    const known = this.listeners.get(name);
    const set = known ?? new Set<(message: string) => void>();
    if (!known) {
      this.listeners.set(name, set);
      try {
        await this.run(() => (this.subscriber as Redis).subscribe(name));
      } catch (error) {
        this.listeners.delete(name);
        throw error;
      }
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size || this.listeners.get(name) !== set) return;
      this.listeners.delete(name);
      this.subscriber?.unsubscribe(name).catch(() => {});
    };
  }

  /** QUIT politely, but never wait on a Redis that does not answer. */
  async close() {
    const connections = [this.redis, this.subscriber].filter((c): c is Redis => c !== undefined);
    const quit = Promise.all(connections.map((c) => c.quit().catch(() => {})));
    await Promise.race([quit, Bun.sleep(1000)]);
    for (const connection of connections) connection.disconnect();
  }
}
