import { withTimeout } from '../../lib/timeout';
import type { ChatConnection } from './connection';
import { CLOSE, encode } from './protocol';

/**
 * Every open chat socket. One timer serves all heartbeats (cheaper than a timer
 * per socket at tens of thousands of connections): each tick pings authenticated
 * sockets and closes those silent for two intervals. Also tracks replies in flight
 * so shutdown can let them finish.
 */
export const createConnectionRegistry = (heartbeatMs: number) => {
  const connections = new Set<ChatConnection>();
  const replies = new Set<Promise<unknown>>();

  const tick = () => {
    const deadline = Date.now() - 2 * heartbeatMs;
    for (const connection of connections) {
      if (!connection.authenticated) continue;
      if (connection.lastSeen < deadline) connection.disconnect(CLOSE.heartbeatTimeout, 'heartbeat timeout');
      else connection.send(encode.ping);
    }
  };
  const heartbeat = setInterval(tick, heartbeatMs);

  const settled = () => Promise.allSettled([...replies]);

  return {
    add: (connection: ChatConnection) => connections.add(connection),
    remove: (connection: ChatConnection) => connections.delete(connection),
    track: (reply: Promise<unknown>) => {
      replies.add(reply);
      reply.finally(() => replies.delete(reply)).catch(() => {});
    },
    get size() {
      return connections.size;
    },

    /**
     * Lets replies in flight finish for up to `graceMs`, then stops the rest (they
     * are stored as interrupted) and closes every socket with 1001.
     */
    shutdown: async (graceMs: number) => {
      clearInterval(heartbeat);
      if (replies.size) await withTimeout(settled(), graceMs, []);
      for (const connection of connections) connection.stop('shutdown');
      await settled();
      for (const connection of connections) connection.disconnect(CLOSE.goingAway, 'server shutting down');
      connections.clear();
    },
  };
};

export type ConnectionRegistry = ReturnType<typeof createConnectionRegistry>;
