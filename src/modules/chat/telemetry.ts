import type { Metrics } from '../../lib/metrics';
import { SpanKind, SpanStatusCode, type Tracer } from '../../lib/tracing';
import type { ErrorCode } from './protocol';
import type { ProviderObserver, ReplyOutcome } from './reply';

/** How a reply ended, as the metrics count it: `error` is ours (INTERNAL_ERROR, NO_CONVERSATION). */
type Ending = 'complete' | 'interrupted' | 'failed' | 'error';

const endingOf = (outcome: ReplyOutcome | undefined): Ending =>
  !outcome ? 'error' : outcome.kind === 'stopped' ? 'interrupted' : outcome.kind;

/**
 * What the chat module tells the metrics and the traces (SPEC §15): once per refusal,
 * once per reply (a span, the in-flight gauge, the outcome) and once per provider
 * call (first chunk, end, tokens). Nothing here runs per delta, and no attribute is
 * anything a user wrote.
 */
export const createReplyTelemetry = (metrics: Metrics, tracer: Tracer) => {
  const observer: ProviderObserver = {
    firstChunk: (model, seconds) =>
      metrics.firstChunk.observe({ gen_ai_operation_name: 'chat', gen_ai_request_model: model }, seconds),
    finished: (model, seconds, errorType, usage) => {
      const labels = { gen_ai_operation_name: 'chat', gen_ai_request_model: model };
      metrics.duration.observe(errorType ? { ...labels, error_type: errorType } : labels, seconds);
      if (!usage) return;
      metrics.tokens.observe({ ...labels, gen_ai_token_type: 'input' }, usage.promptTokens);
      metrics.tokens.observe({ ...labels, gen_ai_token_type: 'output' }, usage.completionTokens);
    },
  };

  return {
    observer,

    /** A frame refused with `code`, or a reply that ended with it. */
    error: (code: ErrorCode) => metrics.errors.inc({ code }),

    /** A reply was admitted: it is in flight until `end`. */
    begin: () => {
      metrics.inFlight.inc();
      const span = tracer.startSpan('chat', {
        kind: SpanKind.CLIENT,
        attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai' },
      });
      return {
        /** The model is known once the conversation's settings are. */
        model: (model: string) => {
          span.updateName(`chat ${model}`);
          span.setAttribute('gen_ai.request.model', model);
        },
        end: (outcome: ReplyOutcome | undefined, errorCode: ErrorCode | undefined) => {
          metrics.inFlight.dec();
          metrics.replies.inc({ outcome: endingOf(outcome) });
          if (outcome?.usage)
            span.setAttributes({
              'gen_ai.usage.input_tokens': outcome.usage.promptTokens,
              'gen_ai.usage.output_tokens': outcome.usage.completionTokens,
            });
          if (errorCode) {
            span.setAttribute('error.type', errorCode);
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.end();
        },
      };
    },
  };
};

export type ReplyTelemetry = ReturnType<typeof createReplyTelemetry>;
