import net from 'node:net';
import { freePort } from './process';

/**
 * A TCP proxy in front of a real dependency (PostgreSQL, Redis) that a test can cut
 * (every connection reset, new ones refused) and restore on the same port, to play
 * an outage without touching the shared server; or hold (what clients send waits in
 * the proxy) and let go, to play a slow round trip.
 */
export const startProxy = async (target: string) => {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  let held: [net.Socket, Buffer | string][] | undefined;
  const handle = (client: net.Socket) => {
    const upstream = net.connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (data) => {
      if (held) held.push([upstream, data]);
      else upstream.write(data);
    });
    client.on('end', () => upstream.end());
    upstream.pipe(client);
  };
  let server = net.createServer(handle);
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  // Below the ephemeral range (freePort): a port the kernel gave out (`listen(0)`) could,
  // once `cut` closed it, be taken as the source port of an outgoing connection, and
  // `restore` then failed with EADDRINUSE (seen once in a PostgreSQL + Redis run).
  let proxyPort = await freePort();
  for (let tries = 1; ; tries++) {
    try {
      await listen(proxyPort);
      break;
    } catch (error) {
      if (tries === 5) throw error; // taken between the check and the bind: another port
      proxyPort = await freePort();
    }
  }

  /** The dependency's URL with host and port replaced by the proxy's. */
  const url = (() => {
    const u = new URL(target);
    u.hostname = '127.0.0.1';
    u.port = String(proxyPort);
    return u.toString();
  })();

  return {
    url,
    /** Every connection reset and new ones refused (what was held is dropped). */
    cut: async () => {
      held = undefined;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
    restore: async () => {
      server = net.createServer(handle);
      await listen(proxyPort);
    },
    /** From now on, what clients send waits in the proxy until `letGo`. */
    hold: () => {
      held ??= [];
    },
    letGo: () => {
      const waiting = held ?? [];
      held = undefined;
      for (const [upstream, data] of waiting) upstream.write(data);
    },
    stop: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
};
