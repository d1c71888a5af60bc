import { type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';

export interface TracingSettings {
  /** The OTLP/HTTP traces URL; unset: no traces. */
  url: string | undefined;
  headers: Record<string, string>;
  serviceName: string;
  version: string;
}

/**
 * OpenTelemetry traces over OTLP/HTTP (JSON) when an endpoint is configured (SPEC §15),
 * exported in batches off the request path. Without one the tracer is the API's no-op:
 * spans cost a function call. Attributes are never message content, tokens or passwords.
 */
export const createTracing = (settings: TracingSettings) => {
  if (!settings.url) return { tracer: trace.getTracer('chatbot-api'), shutdown: async () => {} };
  // Loaded only when traces are on: the SDK and its exporter are ~150 ms of start-up.
  const { OTLPTraceExporter } =
    require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } =
    require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { BatchSpanProcessor, TracerProvider } =
    require('@opentelemetry/sdk-trace') as typeof import('@opentelemetry/sdk-trace');
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': settings.serviceName,
      'service.version': settings.version,
    }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: settings.url, headers: settings.headers }),
        scheduledDelayMillis: 1000,
      }),
    ],
  });
  return {
    tracer: provider.getTracer('chatbot-api', settings.version),
    /** Sends what is buffered, then stops. */
    shutdown: () => provider.shutdown().catch(() => {}),
  };
};

export { type Span, SpanKind, SpanStatusCode, type Tracer };
