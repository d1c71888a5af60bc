import type { Logger } from '../lib/logger';
import type { ChatModel } from './model';
import { createOfflineModel } from './offline';
import { createOpenAIModel } from './openai';

export type { ChatModel, ChatTurn, ModelEvent } from './model';
export { ModelError } from './model';

export const createChatModel = (
  settings: { apiKey?: string; baseUrl?: string; model: string },
  log: Logger,
): ChatModel => {
  if (settings.apiKey) return createOpenAIModel({ ...settings, apiKey: settings.apiKey });
  log.warn(
    'OPENAI_API_KEY is not set: using the built-in OFFLINE model, which only echoes a canned reply. Set OPENAI_API_KEY (and OPENAI_BASE_URL for Ollama/vLLM) for real answers.',
  );
  return createOfflineModel();
};
