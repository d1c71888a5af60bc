import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startServer, type TestServer } from '../support/server';

/** SPEC §14: `GET /` serves the web app from the same process, inside the server's own CSP. */

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.stop());

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${path}`, { headers });

describe('GET /', () => {
  test('serves the page, whose scripts and styles are this server’s own files', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toStartWith('text/html');
    const html = await page.text();
    const files = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    const own = files.filter((file) => !file.startsWith('data:'));
    expect(own.length).toBeGreaterThanOrEqual(2);
    for (const file of own) {
      // Relative to this origin: no CDN.
      expect(file).toStartWith('/');
      const asset = await get(file);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('cache-control')).toContain('immutable');
      expect(asset.headers.get('content-type')).toMatch(/^text\/(javascript|css)/);
    }
  });

  test('a CSP that allows only its own scripts, styles and connections', async () => {
    const csp = (await get('/')).headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    // The API keeps its own, stricter one.
    expect((await get('/api/health/')).headers.get('content-security-policy')).toBe(
      "default-src 'none'; frame-ancestors 'none'",
    );
  });

  test('an unchanged file answers 304 to its ETag', async () => {
    const first = await get('/');
    const etag = first.headers.get('etag');
    expect(etag).toBeTruthy();
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const again = await get('/', { 'if-none-match': etag as string });
    expect(again.status).toBe(304);
  });

  test('a file the app does not have is a JSON 404', async () => {
    for (const path of ['/nothing.js', '/..%2Fpackage.json', '/%ZZ', '/index.html']) {
      const response = await get(path);
      expect([400, 404]).toContain(response.status);
      if (response.status === 404) expect(await response.json()).toEqual({ detail: 'Not found' });
    }
  });
});
