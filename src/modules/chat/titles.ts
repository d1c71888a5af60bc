import type { ChatModel, ChatTurn } from '../../ai';
import { DEFAULT_TITLE } from '../../db/schema';
import { describeError } from '../../lib/failures';
import type { Logger } from '../../lib/logger';
import { cleanContent } from '../../lib/sanitize';
import { type ConversationRepository, toConversationDto } from '../conversations/repository';
import type { ReplyBasis } from './reply';

export interface TitleSettings {
  /** `AI_TITLES`. */
  enabled: boolean;
  /** `AI_TITLE_MODEL`; undefined: the conversation's model. */
  model: string | undefined;
  /** How long a title may take before it is given up. */
  timeoutMs: number;
}

const MAX_TITLE = 60;
// Titles share the provider's connections with replies: a few at a time, so a burst of
// first replies (every new conversation's) never leaves replies waiting for a
// connection (measured: 200 titles at once took the pool and put ~1 s on the
// next replies' first tokens; see bench/history.md). The rest wait their turn; beyond
// the queue's bound a title is skipped and the conversation keeps the default.
const AT_ONCE = 4;
const QUEUED = 1000;
// Enough for six words; a provider that ignores max_tokens is not read further than a title.
const MAX_TOKENS = 24;
// Enough of the exchange to name it; a long first message is not sent whole again.
const EXCERPT = 1000;
const INSTRUCTION =
  'Write a short title (at most six words) for the conversation below, in the language it is written in. ' +
  'Answer with the title only: one line, no quotes, no trailing punctuation.';

/** One line, no quotes around it, at most 60 characters (cut at a word when it can be). */
export const tidyTitle = (raw: string) => {
  const line =
    cleanContent(raw)
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? '';
  const bare = line
    .replace(/^(title\s*:\s*)/i, '')
    .replace(/^["'“”‘’«»`*#\s]+|["'“”‘’«»`*\s]+$/g, '')
    .replace(/["“”]/g, '')
    .trim();
  const chars = [...bare];
  if (chars.length <= MAX_TITLE) return bare;
  const cut = chars.slice(0, MAX_TITLE).join('');
  const space = cut.lastIndexOf(' ');
  return (space > MAX_TITLE / 2 ? cut.slice(0, space) : cut).trim();
};

/** The offline model's title: the first words of the first message. */
const firstWords = (question: string) => tidyTitle(question.split(/\s+/).slice(0, 8).join(' '));

/**
 * Automatic titles (SPEC §12): after a conversation's first complete reply, the model
 * names the conversation, unless its owner chose a title or it has one already. It
 * runs after the reply's final frame and holds no lock; a provider that fails or
 * takes too long leaves the default title and says nothing.
 */
export const createTitler = (
  repo: ConversationRepository,
  model: ChatModel,
  settings: TitleSettings,
  log: Logger,
  /** Tells the conversation's sockets (rooms.updated). */
  announce: (conversationId: string, conversation: string) => void,
) => {
  const pending = new Set<Promise<void>>();
  const closing = new AbortController();

  const ask = async (basis: ReplyBasis, answer: string) => {
    const question = basis.turns.findLast((turn) => turn.role === 'user')?.content ?? '';
    if (model.mode === 'offline') return firstWords(question);
    const turns: ChatTurn[] = [
      { role: 'system', content: INSTRUCTION },
      {
        role: 'user',
        content: `User: ${question.slice(0, EXCERPT)}\n\nAssistant: ${answer.slice(0, EXCERPT)}`,
      },
    ];
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort('timeout'), settings.timeoutMs);
    const signal = AbortSignal.any([controller.signal, closing.signal]);
    let text = '';
    try {
      const options = { model: settings.model ?? basis.model, maxTokens: MAX_TOKENS };
      for await (const batch of model.stream(turns, signal, options)) {
        for (const event of batch) if (event.type === 'delta') text += event.text;
        // A whole first line, or more than a title can use: the rest is not read.
        // (A line break after the leading blanks: one scan, where /\S.*\n/ backtracked.)
        if (text.trimStart().includes('\n') || text.length > 4 * MAX_TITLE) break;
      }
    } finally {
      clearTimeout(timer);
    }
    return closing.signal.aborted || controller.signal.aborted ? '' : tidyTitle(text);
  };

  const title = async (conversationId: string, basis: ReplyBasis, answer: string) => {
    // The reply read whether it may be titled; a reply built on what its room remembered did not.
    if (basis.untitled === undefined) {
      const conversation = await repo.byId(conversationId);
      if (!conversation || conversation.titleSet || conversation.title !== DEFAULT_TITLE) return;
    }
    const suggested = await ask(basis, answer);
    if (!suggested || closing.signal.aborted) return;
    // Only if still untitled: an owner who named it meanwhile keeps their title.
    const updated = await repo.setAutomaticTitle(conversationId, suggested, DEFAULT_TITLE);
    if (updated) announce(conversationId, JSON.stringify(toConversationDto(updated)));
  };

  const waiting: (() => void)[] = [];
  const run = (job: () => Promise<void>) => {
    const done = job()
      .catch((error: unknown) => {
        // No content in the log: the error says what failed, not what was asked.
        log.warn({ error: describeError(error) }, 'automatic title failed');
      })
      .finally(() => {
        pending.delete(done);
        waiting.shift()?.();
      });
    pending.add(done);
  };

  return {
    /** Titles the conversation in the background if it still has the default title. */
    suggest: (conversationId: string, basis: ReplyBasis, answer: string) => {
      if (!settings.enabled || closing.signal.aborted || basis.untitled === false) return;
      const job = () => (closing.signal.aborted ? Promise.resolve() : title(conversationId, basis, answer));
      if (pending.size < AT_ONCE) run(job);
      else if (waiting.length < QUEUED) waiting.push(() => run(job));
    },
    /** Gives up the titles under way (shutdown): they keep the default. */
    close: async () => {
      closing.abort();
      for (const next of waiting.splice(0)) next();
      await Promise.all(pending);
    },
  };
};

export type Titler = ReturnType<typeof createTitler>;
