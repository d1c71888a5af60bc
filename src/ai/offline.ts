import { type ChatModel, type ChatTurn, ModelError, type ModelEvent } from './model';

const WORD_DELAY_MS = 15;

/** Waits `ms`, or less if `signal` aborts; leaves no listener behind either way. */
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

/** The reply the offline model gives to `question`; exported for tests. */
export const offlineReply = (question: string) => {
  const quoted = question.length > 200 ? `${question.slice(0, 200)}…` : question;
  return `This is the built-in offline model: no OPENAI_API_KEY is configured, so no real model answered. You said: "${quoted}"`;
};

/**
 * A stand-in provider so `bun run dev` chats end to end on a machine with nothing
 * installed. It streams a short deterministic reply word by word.
 */
export const createOfflineModel = (): ChatModel => ({
  mode: 'offline',
  async *stream(turns: ChatTurn[], signal: AbortSignal): AsyncIterable<ModelEvent[]> {
    const question = turns.findLast((t) => t.role === 'user')?.content;
    if (question === undefined) throw new ModelError('Nothing to answer.');
    const words = offlineReply(question).split(/(?<= )/);
    for (const word of words) {
      await sleep(WORD_DELAY_MS, signal);
      if (signal.aborted) return;
      yield [{ type: 'delta', text: word }];
    }
  },
});
