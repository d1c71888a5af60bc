import { describe, expect, test } from 'bun:test';
import { Elysia } from 'elysia';
import { errorHandler } from '../../src/lib/error-handler';
import { createLogger } from '../../src/lib/logger';
import { createMetrics } from '../../src/lib/metrics';
import { requestLog } from '../../src/lib/request-log';
import { createTracing } from '../../src/lib/tracing';
import { StoreUnavailableError } from '../../src/store';

const appWith = (debug: boolean) => {
  const lines: string[] = [];
  const log = createLogger('info', { write: (line: string) => void lines.push(line) });
  const { tracer } = createTracing({ url: undefined, headers: {}, serviceName: 'test', version: '0' });
  const app = new Elysia()
    .use(requestLog(log, createMetrics(), tracer))
    .use(errorHandler(log, debug))
    .get('/boom', () => {
      throw new Error('internal detail: password=hunter2 at db.ts:42');
    })
    .get('/store', () => {
      throw new StoreUnavailableError(new Error('ECONNREFUSED'));
    })
    .get('/database', () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    })
    .get('/too-long', () => {
      throw Object.assign(new Error('value too long for type character varying(254)'), { code: '22001' });
    });
  return { app, lines };
};

const get = async (app: { handle: (request: Request) => Promise<Response> }, path: string) => {
  const res = await app.handle(new Request(`http://localhost${path}`));
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('unexpected errors (SPEC §2)', () => {
  test('answer 500 "Internal server error" with no message or stack trace', async () => {
    const { app, lines } = appWith(false);
    const res = await get(app, '/boom');
    expect(res).toEqual({ status: 500, body: { detail: 'Internal server error' } });
    // Logged by name only: the message may carry secrets or query parameters.
    expect(lines.join('\n')).toContain('unhandled error');
    expect(lines.join('\n')).not.toContain('hunter2');
  });

  test('carry the message and stack trace only with DEBUG', async () => {
    const res = await get(appWith(true).app, '/boom');
    expect(res.status).toBe(500);
    expect(res.body.detail).toBe('Internal server error');
    const debug = res.body.debug as { message: string; stack: string };
    expect(debug.message).toContain('internal detail');
    expect(debug.stack).toContain('error-handler.test.ts');
  });

  test('an unreachable store or database answers 503 "Service temporarily unavailable"', async () => {
    const { app } = appWith(true);
    for (const path of ['/store', '/database'])
      expect(await get(app, path)).toEqual({
        status: 503,
        body: { detail: 'Service temporarily unavailable' },
      });
  });
});

describe('text the database refuses (SPEC §2: no input is a 500)', () => {
  test('a value longer than its column is 422, should a check before the database miss it', async () => {
    expect(await get(appWith(false).app, '/too-long')).toEqual({
      status: 422,
      body: {
        detail: [{ loc: ['body'], msg: 'A value is longer than its field allows', type: 'value_error' }],
      },
    });
  });
});

describe('request ids in the logs (SPEC §15)', () => {
  test('the error line and the request line of one request carry its X-Request-Id', async () => {
    const { app, lines } = appWith(false);
    const res = await app.handle(
      new Request('http://localhost/boom', { headers: { 'x-request-id': 'err-42' } }),
    );
    expect(res.headers.get('x-request-id')).toBe('err-42');
    await Bun.sleep(20);
    const mine = lines.map((l) => JSON.parse(l)).filter((l) => l.request_id === 'err-42');
    expect(mine.map((l) => l.msg).sort()).toEqual(['request', 'unhandled error']);
    expect(mine.find((l) => l.msg === 'request')).toMatchObject({
      level: 'info',
      route: '/boom',
      status: 500,
    });
  });
});
