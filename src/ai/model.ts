/** The model-provider port: the chat handler streams from it, not knowing which one runs. */

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export type ModelEvent =
  | { type: 'delta'; text: string }
  | { type: 'usage'; promptTokens: number; completionTokens: number };

export interface StreamOptions {
  /** The provider's model (default: `OPENAI_MODEL`). */
  model?: string;
  /** At most this many tokens in the answer (a title needs a few). */
  maxTokens?: number;
}

export interface ChatModel {
  /** `configured` for a real provider, `offline` for the built-in stand-in. */
  readonly mode: 'configured' | 'offline';
  /**
   * Streams the answer to `turns`, in batches: the events that arrived together (one
   * network read), so the caller can pass them on in one write. Ends normally only
   * after the provider's final chunk; throws ModelError otherwise. When `signal`
   * aborts, ends quietly.
   */
  stream(turns: ChatTurn[], signal: AbortSignal, options?: StreamOptions): AsyncIterable<ModelEvent[]>;
}

/** A provider failure with a message safe to show the user. */
export class ModelError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'ModelError';
  }
}
