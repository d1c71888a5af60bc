/**
 * A small OTLP/HTTP receiver on loopback: it accepts `POST /v1/traces` in JSON (what
 * the server's exporter sends) and keeps every span, flattened, for the tests.
 */

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}

interface ReceivedSpan {
  name: string;
  kind: number;
  traceId: string;
  attributes: Record<string, string | number | boolean | undefined>;
  status?: { code?: number };
  resource: Record<string, string | number | boolean | undefined>;
}

const flatten = (attributes: { key: string; value: OtlpValue }[] = []) =>
  Object.fromEntries(
    attributes.map(({ key, value }) => [
      key,
      value.stringValue ??
        (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
        value.doubleValue ??
        value.boolValue,
    ]),
  );

export const startOtlpReceiver = () => {
  const spans: ReceivedSpan[] = [];
  /** Every request body as received, to look for what must never be in it. */
  const bodies: string[] = [];
  const headers: Record<string, string>[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch: async (request) => {
      if (new URL(request.url).pathname !== '/v1/traces' || request.method !== 'POST')
        return new Response('not found', { status: 404 });
      const body = await request.text();
      bodies.push(body);
      headers.push(Object.fromEntries(request.headers));
      const parsed = JSON.parse(body) as {
        resourceSpans?: {
          resource?: { attributes?: { key: string; value: OtlpValue }[] };
          scopeSpans?: {
            spans?: {
              name: string;
              kind: number;
              traceId: string;
              attributes?: { key: string; value: OtlpValue }[];
              status?: { code?: number };
            }[];
          }[];
        }[];
      };
      for (const resourceSpan of parsed.resourceSpans ?? []) {
        const resource = flatten(resourceSpan.resource?.attributes);
        for (const scope of resourceSpan.scopeSpans ?? [])
          for (const span of scope.spans ?? [])
            spans.push({
              name: span.name,
              kind: span.kind,
              traceId: span.traceId,
              attributes: flatten(span.attributes),
              status: span.status,
              resource,
            });
      }
      return Response.json({});
    },
  });
  return {
    endpoint: `http://127.0.0.1:${server.port}`,
    spans,
    bodies,
    headers,
    stop: () => server.stop(true),
  };
};
