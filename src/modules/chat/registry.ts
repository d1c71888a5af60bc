import { withTimeout } from '../../lib/timeout';
import { CLOSE, encode, MESSAGES } from './protocol';
import type { ChatConnection } from './socket';

/**
 * Every open chat socket. One timer serves all heartbeats (cheaper than a timer
 * per socket at tens of thousands of connections): it ticks eight times an interval,
 * closing authenticated sockets silent for two intervals (so within an eighth of an
 * interval of that), and every eighth tick pings the others. Also tracks replies in
 * flight so shutdown can let them finish.
 *
 * The sockets form a doubly linked list through their own `registryPrev/Next`
 * fields rather than a Set: a Set entry costs ~50 bytes more per socket, a tenth of
 * what an idle socket cost beyond Bun's own relay (bench/history.md).
 */
// A silent socket is closed at most this fraction of an interval late (SPEC §6: two intervals).
const TICKS_PER_INTERVAL = 8;

export const createConnectionRegistry = (heartbeatMs: number) => {
  let newest: ChatConnection | undefined;
  let size = 0;
  const replies = new Set<Promise<unknown>>();

  /** Visits every socket; `visit` may remove the socket it is given. */
  const forEach = (visit: (connection: ChatConnection) => void) => {
    for (let connection = newest; connection; ) {
      const next = connection.registryNext;
      visit(connection);
      connection = next;
    }
  };

  const add = (connection: ChatConnection) => {
    if (connection.registryPrev || newest === connection) return;
    connection.registryNext = newest;
    if (newest) newest.registryPrev = connection;
    newest = connection;
    size++;
  };

  const remove = (connection: ChatConnection) => {
    if (connection.registryPrev) connection.registryPrev.registryNext = connection.registryNext;
    else if (newest === connection) newest = connection.registryNext;
    else return; // not registered
    if (connection.registryNext) connection.registryNext.registryPrev = connection.registryPrev;
    connection.registryPrev = connection.registryNext = undefined;
    size--;
  };

  let ticks = 0;
  const tick = () => {
    const deadline = Date.now() - 2 * heartbeatMs;
    const ping = ++ticks % TICKS_PER_INTERVAL === 0;
    forEach((connection) => {
      if (!connection.authenticated) return;
      if (connection.lastSeen <= deadline) connection.disconnect(CLOSE.heartbeatTimeout, 'heartbeat timeout');
      else if (ping) connection.send(encode.ping);
    });
  };
  const heartbeat = setInterval(tick, heartbeatMs / TICKS_PER_INTERVAL);

  const settled = () => Promise.allSettled([...replies]);

  return {
    add,
    remove,
    /**
     * Closes with 4001 every socket of `userId` (their tokens are void), or with `tokenId`
     * only those that authenticated with that access token (it was logged out).
     */
    closeUser: (userId: string, tokenId?: string) =>
      forEach((connection) => {
        if (connection.userId !== userId) return;
        if (tokenId !== undefined && connection.tokenId !== tokenId) return;
        connection.send(encode.error('AUTH_FAILED', MESSAGES.AUTH_FAILED));
        connection.disconnect(CLOSE.authFailed, 'AUTH_FAILED');
      }),
    track: (reply: Promise<unknown>) => {
      replies.add(reply);
      reply.finally(() => replies.delete(reply)).catch(() => {});
    },
    get size() {
      return size;
    },

    /**
     * Lets replies in flight finish for up to `graceMs`, then stops the rest with
     * `stopReplies` (they are stored as interrupted) and closes every socket with 1001.
     */
    shutdown: async (graceMs: number, stopReplies: () => void) => {
      clearInterval(heartbeat);
      if (replies.size) await withTimeout(settled(), graceMs, []);
      stopReplies();
      await settled();
      forEach((connection) => {
        connection.disconnect(CLOSE.goingAway, 'server shutting down');
        remove(connection);
      });
    },
  };
};

export type ConnectionRegistry = ReturnType<typeof createConnectionRegistry>;
