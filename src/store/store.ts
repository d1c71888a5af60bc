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
  /**
   * Sliding-window admission: when fewer than `limit` events are recorded in the
   * last `windowMs`, records one and admits; otherwise refuses and says when the
   * oldest event leaves the window. Atomic, so concurrent callers never over-admit.
   */
  admit(key: string, limit: number, windowMs: number): Promise<Admission>;
  /** Takes a lock for `owner` unless someone holds it; expires after `ttlMs`. */
  acquire(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Renews a lock still held by `owner`. */
  extend(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases a lock only if `owner` still holds it. */
  release(key: string, owner: string): Promise<void>;
  close(): Promise<void>;
}

export interface Admission {
  allowed: boolean;
  retryAfterMs: number;
}

/** The store did not answer; security decisions built on it must fail closed. */
export class StoreUnavailableError extends Error {
  constructor(cause?: unknown) {
    super('Store unavailable', { cause });
    this.name = 'StoreUnavailableError';
  }
}
