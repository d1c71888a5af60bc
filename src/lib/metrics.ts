import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds buckets from a first token (tens of ms) to a long answer (minutes). */
const SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** OpenTelemetry's advice for gen_ai.client.token.usage. */
const TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];

/**
 * The Prometheus series of SPEC §15, on a registry of our own. Labels are bounded:
 * route templates (never paths or ids), methods, status codes, error codes, reply
 * outcomes and the configured models. Chat series are observed once per reply (its
 * first chunk, its end), never per delta.
 */
export const createMetrics = () => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let openSockets = () => 0;

  return {
    registry,
    http: new Histogram({
      name: 'http_server_request_duration_seconds',
      help: 'HTTP requests by route template, method and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: SECONDS,
      registers,
    }),
    sockets: new Gauge({
      name: 'chat_open_sockets',
      help: 'WebSocket connections open on this instance',
      registers,
      collect() {
        this.set(openSockets());
      },
    }),
    inFlight: new Gauge({
      name: 'chat_replies_in_flight',
      help: 'Replies streaming on this instance',
      registers,
    }),
    replies: new Counter({
      name: 'chat_replies_total',
      help: 'Replies by outcome: complete, interrupted, failed (provider), error (ours)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    errors: new Counter({
      name: 'chat_errors_total',
      help: 'chat.error frames sent, by code',
      labelNames: ['code'] as const,
      registers,
    }),
    tokens: new Histogram({
      name: 'gen_ai_client_token_usage',
      help: 'Tokens per provider call (gen_ai.client.token.usage), input and output',
      labelNames: ['gen_ai_operation_name', 'gen_ai_request_model', 'gen_ai_token_type'] as const,
      buckets: TOKENS,
      registers,
    }),
    duration: new Histogram({
      name: 'gen_ai_client_operation_duration_seconds',
      help: 'Provider call duration (gen_ai.client.operation.duration)',
      labelNames: ['gen_ai_operation_name', 'gen_ai_request_model', 'error_type'] as const,
      buckets: SECONDS,
      registers,
    }),
    firstChunk: new Histogram({
      name: 'gen_ai_client_operation_time_to_first_chunk_seconds',
      help: 'Time from the provider request to its first chunk of text',
      labelNames: ['gen_ai_operation_name', 'gen_ai_request_model'] as const,
      buckets: SECONDS,
      registers,
    }),
    /** Where the open-sockets gauge reads its value (the connection registry). */
    countSockets: (count: () => number) => {
      openSockets = count;
    },
  };
};

export type Metrics = ReturnType<typeof createMetrics>;
