import type { Logger } from '../../lib/logger';
import type { Store } from '../../store';

const RETRY_RELEASE_MS = 1000;

/**
 * Per-user sliding-window limit on accepted messages, shared by every socket and
 * instance through the store. Fails open: with the store away, chatting goes on
 * and a warning is logged (SPEC §10).
 */
export const createRateLimiter = (store: Store, log: Logger, limit: number, windowSeconds: number) => ({
  admit: async (userId: string) => {
    try {
      return (await store.admit(`rate:${userId}`, limit, windowSeconds * 1000)).allowed;
    } catch {
      log.warn('rate limit skipped: store unavailable');
      return true;
    }
  },
});

export interface ConversationLock {
  release(): Promise<void>;
}

/**
 * One reply at a time per conversation, across sockets and instances. A local set
 * keeps this instance exclusive even when the store is away (then the lock fails
 * open across instances). The store lock expires by itself and is renewed while
 * the reply streams; a release the store could not take is retried until it can.
 */
export const createConversationLocks = (store: Store, log: Logger, ttlMs: number) => {
  const local = new Set<string>();
  const pendingReleases = new Map<string, string>();
  let retryTimer: Timer | undefined;

  const retryReleases = () => {
    retryTimer = undefined;
    for (const [key, owner] of pendingReleases)
      store.release(key, owner).then(
        () => pendingReleases.delete(key),
        () => scheduleRetry(),
      );
  };
  const scheduleRetry = () => {
    retryTimer ??= setTimeout(retryReleases, RETRY_RELEASE_MS);
    retryTimer.unref?.();
  };

  return {
    acquire: async (conversationId: string): Promise<ConversationLock | null> => {
      if (local.has(conversationId)) return null;
      local.add(conversationId);
      const key = `lock:conversation:${conversationId}`;
      const owner = crypto.randomUUID();
      let held = false;
      try {
        held = await store.acquire(key, owner, ttlMs);
        if (!held) {
          local.delete(conversationId);
          return null;
        }
        pendingReleases.delete(key);
      } catch {
        log.warn('conversation lock taken locally only: store unavailable');
      }
      const renewal = held
        ? setInterval(() => store.extend(key, owner, ttlMs).catch(() => {}), ttlMs / 3)
        : undefined;
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          clearInterval(renewal);
          local.delete(conversationId);
          if (!held) return;
          try {
            await store.release(key, owner);
          } catch {
            log.warn('conversation lock release deferred: store unavailable');
            pendingReleases.set(key, owner);
            scheduleRetry();
          }
        },
      };
    },
    stop: () => clearTimeout(retryTimer),
  };
};

export type ConversationLocks = ReturnType<typeof createConversationLocks>;
export type RateLimiter = ReturnType<typeof createRateLimiter>;
