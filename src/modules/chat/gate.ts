import { LRUCache } from 'lru-cache';
import type { Logger } from '../../lib/logger';
import type { Store } from '../../store';

const RETRY_RELEASE_MS = 1000;
// A stamp only has to outlive the sockets that remember it; a stale one costs a reload.
const STAMP_TTL_MS = 24 * 3600_000;
// Users and conversations whose last claim or reply this instance remembers, to
// expect the next claim's answer (`expects`); a forgotten one just is not expected.
const REMEMBERED = 10_000;

export interface GateSettings {
  /** Accepted messages per user in any window of `rateWindowMs`. */
  rateLimit: number;
  rateWindowMs: number;
  /** Life of a conversation lock; renewed while the reply streams. */
  lockTtlMs: number;
}

interface ConversationLock {
  /**
   * The reply's own id. After a stamped release the conversation's stamp is this id
   * until another reply goes in, so a socket that remembers it knows its copy of
   * the history is current.
   */
  readonly id: string;
  /** Resolves true when the store released the lock and stamped the conversation. */
  release(): Promise<boolean>;
}

/** The daily quota (SPEC §13), counted in the database (modules/usage). */
export interface QuotaPort {
  /**
   * Refused when a limit is used up; otherwise, when a limit applies, the message is
   * counted at once, on `day` (unset: not counted here).
   */
  admit(userId: string): Promise<{ refused: boolean; day?: string }>;
  /** Takes back a message `admit` counted. */
  refund(userId: string, day: string): Promise<void>;
}

const DAY_MS = 86_400_000;

export type Admission =
  | { kind: 'busy' }
  /** `retryAfterMs`: until the rate window has room again, or the quota's day (UTC) ends. */
  | { kind: 'limited' | 'quota'; retryAfterMs: number }
  | {
      kind: 'claimed';
      lock: ConversationLock;
      /** The conversation's stamp before this reply; null when the store could not say. */
      stamp: string | null;
      /** The quota counted the message already (a daily limit applies to the user). */
      counted: boolean;
    };

/**
 * The checks a chat message passes before anything is stored: the user's daily quota
 * (one database statement that checks and counts), then, in one store round trip,
 * one reply at a time per conversation (across sockets and instances) and a per-user
 * sliding-window rate limit. A refused message counts against none of them.
 *
 * Both fail open when the store is away (SPEC §10): a local set keeps this instance
 * exclusive, the rate limit is skipped, and a warning is logged. The store lock
 * expires by itself and is renewed while the reply streams; a release the store
 * could not take is retried until it can.
 */
export const createChatGate = (store: Store, log: Logger, settings: GateSettings, quota: QuotaPort) => {
  const local = new Set<string>();
  /** Per user: what the window had left after the last claim seen here, less the claims expected since. */
  const rooms = new LRUCache<string, number>({ max: REMEMBERED });
  /** Per conversation: the stamp this instance's own last reply left. */
  const stamps = new LRUCache<string, string>({ max: REMEMBERED });
  /**
   * Locks to release once the store answers again, by owner: one conversation may have
   * several (a reply's claim left unanswered, then the next one's), and each is released
   * only for its own owner.
   */
  const pendingReleases = new Map<string, string>();
  let retryTimer: Timer | undefined;

  const retryReleases = () => {
    retryTimer = undefined;
    for (const [owner, key] of pendingReleases)
      store.release(key, owner).then(
        () => pendingReleases.delete(owner),
        () => scheduleRetry(),
      );
  };
  const scheduleRetry = () => {
    retryTimer ??= setTimeout(retryReleases, RETRY_RELEASE_MS);
    retryTimer.unref?.();
  };
  /** Releases `key` for `owner` once the store answers again (soon: the next retry). */
  const deferRelease = (key: string, owner: string) => {
    pendingReleases.set(owner, key);
    scheduleRetry();
  };
  /** Releases `key` for `owner` without waiting for the store, or once it answers again. */
  const releaseSoon = (key: string, owner: string) => {
    store.release(key, owner).catch(() => deferRelease(key, owner));
  };

  /**
   * The conversation changed outside a reply (its branch or settings): no socket's
   * remembered history of it may be used again. Its stamp becomes a value no reply
   * left, and a reply streaming meanwhile does not stamp over it (Store.release).
   */
  const changed = async (conversationId: string) => {
    stamps.delete(conversationId);
    await store
      .set(`stamp:conversation:${conversationId}`, `changed:${crypto.randomUUID()}`, STAMP_TTL_MS)
      .catch(() => log.warn('conversation change not recorded: store unavailable'));
  };

  return {
    /**
     * Whether the next `claim` of `userId` in `conversationId` is expected to admit
     * it with the stamp `stamp`, so the reply's provider request may leave while the
     * claim is still on its way: no reply of the conversation streams here, the
     * user's window had room at the last claim seen here (less the claims expected
     * since), and the conversation's stamp is the one this instance's own last reply
     * left. With one instance the expectation always holds; only another instance's
     * claims and replies can break it. An expected claim counts against the room.
     */
    expects: (conversationId: string, userId: string, stamp: string): boolean => {
      const room = rooms.get(userId) ?? 0;
      if (room < 1 || local.has(conversationId) || stamps.get(conversationId) !== stamp) return false;
      rooms.set(userId, room - 1);
      return true;
    },

    /**
     * Throws when the quota cannot be checked (the database is away). `followed`: a reply
     * of the conversation is known here to stream on another instance, which only the
     * store's lock could otherwise tell.
     */
    claim: async (conversationId: string, userId: string, followed = false): Promise<Admission> => {
      if (local.has(conversationId)) return { kind: 'busy' };
      local.add(conversationId);
      let admitted: Awaited<ReturnType<QuotaPort['admit']>> | undefined;
      try {
        admitted = await quota.admit(userId);
      } finally {
        if (!admitted || admitted.refused) local.delete(conversationId);
      }
      if (admitted.refused) {
        // Until a claim passes again, no provider request leaves ahead of it (`expects`).
        rooms.set(userId, 0);
        return { kind: 'quota', retryAfterMs: DAY_MS - (Date.now() % DAY_MS) };
      }
      const { day } = admitted;
      const refund = async () => {
        if (day)
          await quota
            .refund(userId, day)
            .catch(() => log.warn('a refused message is still counted: database unavailable'));
      };
      const key = `lock:conversation:${conversationId}`;
      const stampKey = `stamp:conversation:${conversationId}`;
      const owner = crypto.randomUUID();
      const { lockTtlMs: ttlMs } = settings;
      let held = false;
      /**
       * The store did not answer the claim: it may still have been applied (a command
       * held up on its way, then timed out here), so the lock is released all the same
       * (release only deletes it for its owner) rather than left to its time-to-live.
       */
      let unknown = false;
      let stamp: string | null = null;
      try {
        const claim = await store.claim(
          { key, owner, ttlMs },
          { key: `rate:${userId}`, limit: settings.rateLimit, windowMs: settings.rateWindowMs },
          stampKey,
        );
        if (claim.room !== undefined) rooms.set(userId, claim.room);
        if (claim.outcome !== 'claimed') {
          local.delete(conversationId);
          void refund();
          return claim.outcome === 'busy'
            ? { kind: 'busy' }
            : { kind: 'limited', retryAfterMs: claim.retryAfterMs ?? settings.rateWindowMs };
        }
        held = true;
        stamp = claim.stamp;
      } catch {
        unknown = true;
        // Nothing can be expected of the store until it answers again.
        rooms.delete(userId);
        // The lock fails open (SPEC §10), but not over a reply this instance knows streams
        // elsewhere: two replies at once would interleave on the sockets that follow it.
        if (followed) {
          local.delete(conversationId);
          void refund();
          releaseSoon(key, owner);
          return { kind: 'busy' };
        }
        log.warn('rate limit skipped and conversation lock taken locally only: store unavailable');
      }
      const renewal = held
        ? setInterval(() => store.extend(key, owner, ttlMs).catch(() => {}), ttlMs / 3)
        : undefined;
      let released = false;
      const lock: ConversationLock = {
        id: owner,
        release: async () => {
          if (released) return false;
          released = true;
          clearInterval(renewal);
          local.delete(conversationId);
          // Not waited for: the final frame is not held up by a store that does not answer.
          if (unknown) releaseSoon(key, owner);
          if (!held) return false;
          try {
            const stamped = await store.release(key, owner, {
              key: stampKey,
              ttlMs: STAMP_TTL_MS,
              seen: stamp,
            });
            if (stamped) stamps.set(conversationId, owner);
            return stamped;
          } catch {
            log.warn('conversation lock release deferred: store unavailable');
            deferRelease(key, owner);
            return false;
          }
        },
      };
      return { kind: 'claimed', lock, stamp, counted: day !== undefined };
    },
    /**
     * Runs `change` (a branch switch) while no reply can start or stream in the
     * conversation: the conversation lock, taken like a reply's (busy: undefined, and
     * `change` does not run). The remembered history is forgotten before the lock goes.
     */
    whileIdle: async <T>(conversationId: string, change: () => Promise<T>): Promise<T | undefined> => {
      if (local.has(conversationId)) return undefined;
      local.add(conversationId);
      const key = `lock:conversation:${conversationId}`;
      const owner = crypto.randomUUID();
      let held = false;
      let unknown = false;
      try {
        try {
          held = await store.acquire(key, owner, settings.lockTtlMs);
          if (!held) return undefined;
        } catch {
          // As for a reply's claim: it may have been applied all the same.
          unknown = true;
          log.warn('conversation lock taken locally only: store unavailable');
        }
        const result = await change();
        await changed(conversationId);
        return result;
      } finally {
        local.delete(conversationId);
        if (held) await store.release(key, owner).catch(() => deferRelease(key, owner));
        else if (unknown) releaseSoon(key, owner);
      }
    },
    changed,
    stop: () => clearTimeout(retryTimer),
  };
};

export type ChatGate = ReturnType<typeof createChatGate>;
