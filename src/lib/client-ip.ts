import type { Server } from 'bun';

/**
 * The client's address: the connection's own, or with TRUST_PROXY the first
 * X-Forwarded-For hop (the one the proxy saw). Without a proxy in front the
 * header is attacker-controlled, which is why it is opt-in.
 */
export const clientIp = (
  request: Request,
  server: Server<unknown> | null | undefined,
  trustProxy: boolean,
): string => {
  if (trustProxy) {
    const forwarded = request.headers.get('x-forwarded-for')?.split(',')[0]?.trim();
    if (forwarded) return forwarded;
  }
  return server?.requestIP(request)?.address ?? 'unknown';
};
