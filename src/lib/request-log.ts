import { Elysia } from 'elysia';
import { type Logger, requestScope } from './logger';
import type { Metrics } from './metrics';
import { type Span, SpanKind, SpanStatusCode, type Tracer } from './tracing';

// An incoming id is kept only when it is this: short, and safe in a log line and a header.
const SAFE_ID = /^[A-Za-z0-9._-]{1,128}$/;

interface InFlight {
  id: string;
  startedAt: number;
  span: Span;
  /** Answered with 101 Switching Protocols (Bun answered it; the route returned nothing). */
  upgraded?: boolean;
}

/** Per request, from its first hook on: its id, start and span (a request object is never reused). */
const inFlight = new WeakMap<Request, InFlight>();

/** The id of a request in flight, for any log line about it (SPEC §15). */
export const requestIdOf = (request: Request) => inFlight.get(request)?.id;

/** The request was upgraded to a WebSocket: it is logged and counted as the 101 it was. */
export const upgraded = (request: Request) => {
  const state = inFlight.get(request);
  if (state) state.upgraded = true;
};

/**
 * Every request gets an id (`X-Request-Id`: a safe incoming one is kept, any other
 * replaced), a span when traces are on, and when it is answered one JSON line at
 * `info` — method, route template (never the raw path), status, duration, id — and one
 * observation of the HTTP duration metric. Bodies and headers are never logged, so
 * neither are credentials.
 */
export const requestLog = (log: Logger, metrics: Metrics, tracer: Tracer) =>
  new Elysia({ name: 'request-log' })
    .onRequest(({ request, set }) => {
      const incoming = request.headers.get('x-request-id');
      const id = incoming && SAFE_ID.test(incoming) ? incoming : crypto.randomUUID();
      set.headers['x-request-id'] = id;
      requestScope.enterWith(id);
      const span = tracer.startSpan(request.method, {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': request.method },
      });
      inFlight.set(request, { id, startedAt: performance.now(), span });
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set, responseValue }) => {
      const state = inFlight.get(request);
      if (!state) return;
      // Errors answer with a Response of their own; set.status only knows the rest.
      const raw = state.upgraded
        ? 101
        : responseValue instanceof Response
          ? responseValue.status
          : set.status;
      const status = typeof raw === 'number' ? raw : 200;
      const seconds = (performance.now() - state.startedAt) / 1000;
      const template = route || 'unmatched';
      log.info(
        {
          method: request.method,
          route: template,
          status,
          ms: Math.round(seconds * 10_000) / 10,
          request_id: state.id,
        },
        'request',
      );
      metrics.http.observe({ method: request.method, route: template, status: String(status) }, seconds);
      state.span.updateName(`${request.method} ${template}`);
      state.span.setAttributes({ 'http.route': template, 'http.response.status_code': status });
      if (status >= 500) state.span.setStatus({ code: SpanStatusCode.ERROR });
      state.span.end();
    });
