/**
 * The key-value port behind rate limits, the token blacklist, login lockout and
 * conversation locks. Two adapters: Redis (shared by every instance) and an
 * in-process map (one instance only). Keys are plain strings; adapters add the prefix.
 */
export interface Store {
  /** `redis` or `embedded`, as the health check reports it. */
  readonly kind: 'redis' | 'embedded';
  ping(): Promise<void>;
  /** Sets `key` with a time-to-live in milliseconds. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  exists(key: string): Promise<boolean>;
  get(key: string): Promise<string | null>;
  del(key: string): Promise<void>;
  /** Adds one to a counter and (re)starts its time-to-live; returns the new count. */
  increment(key: string, ttlMs: number): Promise<number>;
  /** Remaining life in milliseconds; 0 when the key is gone. */
  ttl(key: string): Promise<number>;
  /** Takes a lock for `owner` unless someone holds it; expires after `ttlMs`. */
  acquire(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /**
   * Everything a chat message needs from the store, atomically and in one round
   * trip: takes `lock` for its owner unless someone holds it, then admits against
   * `rate`'s sliding window (when fewer than `limit` events fall in the last
   * `windowMs`, one is recorded). A refusal takes and records nothing. Also returns
   * the stamp the last `release` with a stamp left on `stampKey`.
   */
  claim(lock: LockSpec, rate: RateSpec, stampKey: string): Promise<Claim>;
  /** Renews a lock still held by `owner`. */
  extend(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /**
   * Releases a lock only if `owner` still holds it, and then sets `stamp.key` to the
   * owner (so the next `claim` can tell nobody else went in between) if it still
   * holds `stamp.seen`, what the claim saw (null: nothing), so a change made while the
   * lock was held (see `ChatGate.changed`) is not overwritten. True if released and,
   * when a stamp was asked for, stamped.
   */
  release(key: string, owner: string, stamp?: StampSpec): Promise<boolean>;
  /**
   * Sends `message` to every current subscriber of `channel`, on every instance
   * (fire and forget: nothing is kept for a subscriber that comes later). Messages
   * one instance publishes arrive in the order it published them.
   */
  publish(channel: string, message: string): Promise<void>;
  /** Calls `listener` with each message published on `channel` from now on; resolves once subscribed. */
  subscribe(channel: string, listener: (message: string) => void): Promise<() => void>;
  close(): Promise<void>;
}

export interface LockSpec {
  key: string;
  owner: string;
  ttlMs: number;
}

export interface StampSpec {
  key: string;
  ttlMs: number;
  seen: string | null;
}

export interface RateSpec {
  key: string;
  limit: number;
  windowMs: number;
}

export interface Claim {
  outcome: 'claimed' | 'busy' | 'limited';
  /** What the last stamping `release` left, or null. */
  stamp: string | null;
  /**
   * How many more events the rate window admits after this claim (0 when limited);
   * unset when the lock refused it (busy), as the window was not looked at.
   */
  room?: number;
  /**
   * Limited: how long until the window admits a message again (its oldest event
   * leaves it), in milliseconds.
   */
  retryAfterMs?: number;
}

/** The store did not answer; security decisions built on it must fail closed. */
export class StoreUnavailableError extends Error {
  constructor(cause?: unknown) {
    super('Store unavailable', { cause });
    this.name = 'StoreUnavailableError';
  }
}
