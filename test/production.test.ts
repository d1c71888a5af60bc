import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createClient } from './support/client';
import { startServer, type TestServer } from './support/server';
import { connect } from './support/ws';

const PRODUCTION = {
  NODE_ENV: 'production',
  SECRET_KEY: 'production-secret-key-for-tests-only-0123456789',
  JWT_SECRET_KEY: 'production-jwt-secret-key-for-tests-0123456789',
  ALLOWED_HOSTS: 'api.example.com,127.0.0.1',
  CORS_ALLOWED_ORIGINS: 'https://app.example.com',
};

let server: TestServer;
let proxied: TestServer;

beforeAll(async () => {
  [server, proxied] = await Promise.all([
    startServer(PRODUCTION),
    startServer({ ...PRODUCTION, TRUST_PROXY: 'true' }),
  ]);
});
afterAll(() => Promise.all([server.stop(), proxied.stop()]));

const get = (base: string, path: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { headers, redirect: 'manual' });

describe('Host check', () => {
  test('refuses a Host not in ALLOWED_HOSTS with 400', async () => {
    const res = await get(server.url, '/api/conversations/', { host: 'evil.example.com' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ detail: expect.any(String) });
  });

  test('checks the Host before redirecting to HTTPS', async () => {
    expect((await get(server.url, '/api/auth/me', { host: 'evil.example.com' })).status).toBe(400);
  });

  test("takes ALLOWED_HOSTS as Django does: '.example.org' is that domain and its subdomains; a trailing dot is ignored", async () => {
    const wildcard = await startServer({ ...PRODUCTION, ALLOWED_HOSTS: '.example.org,api.example.com' });
    try {
      for (const host of ['example.org', 'chat.example.org', 'a.b.example.org:8443', 'api.example.com.'])
        expect((await get(wildcard.url, '/api/auth/me', { host })).status).toBe(308);
      for (const host of ['evilexample.org', 'example.org.evil.com', 'example.com', 'sub.api.example.com'])
        expect((await get(wildcard.url, '/api/auth/me', { host })).status).toBe(400);
    } finally {
      await wildcard.stop();
    }
  });

  test('an IPv6 address is written in brackets, as Django writes it: [::1] takes Host [::1] with any port', async () => {
    const v6 = await startServer({ ...PRODUCTION, ALLOWED_HOSTS: '[::1],api.example.com' });
    try {
      for (const host of ['[::1]', '[::1]:8443'])
        expect({ host, status: (await get(v6.url, '/api/auth/me', { host })).status }).toEqual({
          host,
          status: 308,
        });
      for (const host of ['[::2]:8443', '[::1', '::1'])
        expect({ host, status: (await get(v6.url, '/api/auth/me', { host })).status }).toEqual({
          host,
          status: 400,
        });
    } finally {
      await v6.stop();
    }
  });

  test('ignores the port of the Host header', async () => {
    const res = await get(server.url, '/api/auth/me', { host: 'api.example.com:8443' });
    expect(res.status).toBe(308);
  });
});

describe('HTTPS redirect', () => {
  test('redirects plain HTTP to HTTPS with 308, keeping path and query', async () => {
    const res = await get(server.url, '/api/conversations/?limit=5', { host: 'api.example.com' });
    expect(res.status).toBe(308);
    expect(res.headers.get('location')).toBe('https://api.example.com/api/conversations/?limit=5');
  });

  test('ignores X-Forwarded-Proto unless TRUST_PROXY is on', async () => {
    const res = await get(server.url, '/api/auth/me', {
      host: 'api.example.com',
      'x-forwarded-proto': 'https',
    });
    expect(res.status).toBe(308);
  });

  test('with TRUST_PROXY, X-Forwarded-Proto https is served and http is redirected', async () => {
    const https = await get(proxied.url, '/api/auth/me', {
      host: 'api.example.com',
      'x-forwarded-proto': 'https',
    });
    expect(https.status).toBe(401);
    const http = await get(proxied.url, '/api/auth/me', {
      host: 'api.example.com',
      'x-forwarded-proto': 'http',
    });
    expect(http.status).toBe(308);
  });

  test('the health check is exempt from the Host check and the redirect', async () => {
    for (const path of ['/api/health/', '/api/health']) {
      const res = await get(server.url, path, { host: '10.0.0.7' });
      expect(res.status).toBe(200);
    }
  });
});

describe('security headers', () => {
  test('carry HSTS for a year with subdomains, CSP, nosniff, Referrer-Policy and X-Frame-Options DENY', async () => {
    for (const res of [
      await get(server.url, '/api/health/'),
      await get(proxied.url, '/api/auth/me', { host: 'api.example.com', 'x-forwarded-proto': 'https' }),
    ]) {
      expect(res.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBeTruthy();
      expect(res.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  test('the full API works over HTTPS behind the proxy', async () => {
    const api = createClient(proxied.url);
    const headers = { host: 'api.example.com', 'x-forwarded-proto': 'https' };
    const username = `prod${Date.now().toString(36)}`;
    const res = await api.request('POST', '/api/auth/register', {
      headers,
      body: { username, email: `${username}@example.com`, password: 'Correct-Horse-9-Battery' },
    });
    expect(res.status).toBe(201);
  });
});

describe('login lockout behind the proxy (TRUST_PROXY)', () => {
  test('counts by the address the proxy appended last: addresses the client put before it change nothing', async () => {
    const api = createClient(proxied.url);
    const https = { host: 'api.example.com', 'x-forwarded-proto': 'https' };
    const username = `lock${Date.now().toString(36)}`;
    const password = 'Correct-Horse-9-Battery';
    const registered = await api.request('POST', '/api/auth/register', {
      headers: https,
      body: { username, email: `${username}@example.com`, password },
    });
    expect(registered.status).toBe(201);
    const login = (forwardedFor: string, secret: string) =>
      api.request('POST', '/api/token/pair', {
        headers: { ...https, 'x-forwarded-for': forwardedFor },
        body: { username, password: secret },
      });
    // Five failures (the default), each claiming another address before the proxy's.
    for (let i = 0; i < 5; i++)
      expect((await login(`10.0.0.${i}, 203.0.113.7`, 'Wrong-pass-123!')).status).toBe(401);
    expect((await login('10.9.9.9, 203.0.113.7', password)).status).toBe(429);
    // Another client, as the proxy saw it, is not locked out.
    expect((await login('203.0.113.8', password)).status).toBe(200);
  });
});

describe('WebSocket Origin check', () => {
  test('refuses an upgrade from an Origin not in CORS_ALLOWED_ORIGINS with 403', async () => {
    const res = await fetch(`${server.url}/ws/chat/${crypto.randomUUID()}/`, {
      headers: {
        host: '127.0.0.1',
        origin: 'https://evil.example.com',
        upgrade: 'websocket',
        connection: 'Upgrade',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '13',
      },
    });
    expect(res.status).toBe(403);
  });

  test('accepts an allowed Origin and no Origin, over plain HTTP (upgrades are not redirected)', async () => {
    for (const headers of [{ origin: 'https://app.example.com' } as Record<string, string>, {}]) {
      const ws = await connect(`${server.wsUrl}/ws/chat/${crypto.randomUUID()}/`, { headers });
      ws.send({ type: 'chat.message', content: 'hi' });
      expect((await ws.next()).code).toBe('AUTH_REQUIRED');
      ws.close();
    }
  });
});
