import type { Claim, LockSpec, RateSpec, StampSpec, Store } from './store';

interface Entry {
  value: string;
  expiresAt: number;
}

const SWEEP_INTERVAL_MS = 30_000;

/** In-process adapter: correct for one instance, shares nothing with others. */
export class MemoryStore implements Store {
  readonly kind = 'embedded';
  private readonly entries = new Map<string, Entry>();
  private readonly windows = new Map<string, number[]>();
  private readonly channels = new Map<string, Set<(message: string) => void>>();
  private readonly sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);

  constructor() {
    this.sweeper.unref();
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private sweep() {
    const now = Date.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
    for (const [key, events] of this.windows) {
      const last = events.at(-1);
      if (last === undefined || last <= now - 24 * 3600_000) this.windows.delete(key);
    }
  }

  async ping() {}

  async set(key: string, value: string, ttlMs: number) {
    this.entries.set(key, { value, expiresAt: Date.now() + ttlMs });
  }

  async exists(key: string) {
    return this.live(key) !== undefined;
  }

  async get(key: string) {
    return this.live(key)?.value ?? null;
  }

  async del(key: string) {
    this.entries.delete(key);
  }

  async increment(key: string, ttlMs: number) {
    const count = Number(this.live(key)?.value ?? 0) + 1;
    this.entries.set(key, { value: String(count), expiresAt: Date.now() + ttlMs });
    return count;
  }

  async ttl(key: string) {
    const entry = this.live(key);
    return entry ? entry.expiresAt - Date.now() : 0;
  }

  async acquire(key: string, owner: string, ttlMs: number) {
    if (this.live(key)) return false;
    this.entries.set(key, { value: owner, expiresAt: Date.now() + ttlMs });
    return true;
  }

  async claim(lock: LockSpec, rate: RateSpec, stampKey: string): Promise<Claim> {
    const stamp = this.live(stampKey)?.value ?? null;
    if (this.live(lock.key)) return { outcome: 'busy', stamp };
    const now = Date.now();
    const events = this.windows.get(rate.key) ?? [];
    this.windows.set(rate.key, events);
    // Oldest first: drop what fell out of the window from the front (one splice, not
    // a filter over every event still in it, which a high limit makes long).
    let expired = 0;
    while (expired < events.length && (events[expired] as number) <= now - rate.windowMs) expired++;
    if (expired) events.splice(0, expired);
    if (events.length >= rate.limit) {
      const freeing = events[events.length - rate.limit] ?? now;
      return { outcome: 'limited', stamp, room: 0, retryAfterMs: freeing + rate.windowMs - now };
    }
    events.push(now);
    this.entries.set(lock.key, { value: lock.owner, expiresAt: now + lock.ttlMs });
    return { outcome: 'claimed', stamp, room: rate.limit - events.length };
  }

  async extend(key: string, owner: string, ttlMs: number) {
    const entry = this.live(key);
    if (entry?.value !== owner) return false;
    entry.expiresAt = Date.now() + ttlMs;
    return true;
  }

  async release(key: string, owner: string, stamp?: StampSpec) {
    if (this.live(key)?.value !== owner) return false;
    this.entries.delete(key);
    if (!stamp) return true;
    if ((this.live(stamp.key)?.value ?? null) !== stamp.seen) return false;
    this.entries.set(stamp.key, { value: owner, expiresAt: Date.now() + stamp.ttlMs });
    return true;
  }

  async publish(channel: string, message: string) {
    const listeners = this.channels.get(channel);
    // Delivered after the publisher's turn, as a message from Redis would be.
    if (listeners) for (const listener of [...listeners]) queueMicrotask(() => listener(message));
  }

  async subscribe(channel: string, listener: (message: string) => void) {
    const listeners = this.channels.get(channel) ?? new Set();
    this.channels.set(channel, listeners);
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (!listeners.size && this.channels.get(channel) === listeners) this.channels.delete(channel);
    };
  }

  async close() {
    clearInterval(this.sweeper);
    this.channels.clear();
  }
}
