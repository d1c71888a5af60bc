import type { Server } from 'bun';

/**
 * The client's address: the connection's own, or with TRUST_PROXY the address the
 * proxy in front of us saw, which it appended last to X-Forwarded-For. The entries
 * before it are whatever the client sent: taking the first let anyone pick a new
 * address per attempt, and so escape the login lockout. One proxy is trusted; behind
 * several, the last one's neighbour is the address used. Without a proxy in front the
 * header is attacker-controlled, which is why it is opt-in.
 */
export const clientIp = (
  request: Request,
  server: Server<unknown> | null | undefined,
  trustProxy: boolean,
): string => {
  if (trustProxy) {
    const forwarded = request.headers.get('x-forwarded-for');
    const last = forwarded?.slice(forwarded.lastIndexOf(',') + 1).trim();
    if (last) return last;
  }
  return server?.requestIP(request)?.address ?? 'unknown';
};
