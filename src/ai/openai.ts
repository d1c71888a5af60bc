import OpenAI from 'openai';
import { type ChatModel, type ChatTurn, ModelError, type ModelEvent } from './model';

export interface OpenAISettings {
  apiKey: string;
  baseUrl?: string;
  model: string;
}

const describe = (error: unknown): string => {
  if (error instanceof OpenAI.APIConnectionError) return 'The AI provider could not be reached.';
  if (error instanceof OpenAI.RateLimitError)
    return 'The AI provider is rate limiting requests. Try again shortly.';
  if (error instanceof OpenAI.AuthenticationError) return 'The AI provider refused our credentials.';
  if (error instanceof OpenAI.APIError && error.status !== undefined)
    return `The AI provider answered with an error (HTTP ${error.status}).`;
  return 'The AI provider sent a broken response.';
};

/**
 * Any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, LM Studio, gateways) through
 * the official client. No retries: a failure is reported to the user at once, and
 * the silence timeout is enforced by the caller, which knows about backpressure.
 * Bun's own fetch pauses the provider's socket once ~256 KiB of the body waits
 * unread (Bun ≥ 1.4.5), so a reply we stop reading stops coming (SPEC §10); the
 * backpressure test in test/modules/chat/limits.test.ts holds it to that.
 */
export const createOpenAIModel = (settings: OpenAISettings): ChatModel => {
  const client = new OpenAI({
    apiKey: settings.apiKey,
    baseURL: settings.baseUrl,
    maxRetries: 0,
    timeout: 24 * 3600_000,
  });

  return {
    mode: 'configured',
    async *stream(turns: ChatTurn[], signal: AbortSignal): AsyncIterable<ModelEvent> {
      let finished = false;
      try {
        const stream = await client.chat.completions.create(
          {
            model: settings.model,
            messages: turns,
            stream: true,
            stream_options: { include_usage: true },
          },
          { signal },
        );
        for await (const chunk of stream) {
          const choice = chunk.choices?.[0];
          const text = choice?.delta?.content;
          if (text) yield { type: 'delta', text };
          if (choice?.finish_reason) finished = true;
          if (chunk.usage)
            yield {
              type: 'usage',
              promptTokens: chunk.usage.prompt_tokens ?? 0,
              completionTokens: chunk.usage.completion_tokens ?? 0,
            };
        }
      } catch (error) {
        if (signal.aborted) return;
        throw new ModelError(describe(error), error);
      }
      if (!finished && !signal.aborted) throw new ModelError('The AI provider ended the answer early.');
    },
  };
};
