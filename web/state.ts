import { batch, computed, signal } from '@preact/signals';
import { ChatSocket, type ChatSocketStatus, createClient, type Session, type Tokens } from '../client';

/** The web app's state: signals the components read, and the actions that change them. */

const TOKENS_KEY = 'chatbot.tokens';

const storedSession: Session = {
  get: () => {
    const raw = localStorage.getItem(TOKENS_KEY);
    return raw ? (JSON.parse(raw) as Tokens) : undefined;
  },
  set: (tokens) => {
    if (tokens) localStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
    else localStorage.removeItem(TOKENS_KEY);
    signedIn.value = tokens !== undefined;
  },
};

const client = createClient(location.origin, storedSession);
const { api } = client;

export interface Conversation {
  id: string;
  title: string;
  model: string | null;
  current_message_id: string | null;
  updated_at: string;
}

export interface Message {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  status: 'complete' | 'interrupted' | 'failed' | 'streaming';
  parent_id: string | null;
  sibling_ids: string[];
}

export interface Hit {
  conversation: Conversation;
  snippet: string | null;
}

export const signedIn = signal(storedSession.get() !== undefined);
/** The signed-in user's data has loaded (start finished): until then the app shows it loads. */
export const loaded = signal(false);
export const username = signal('');
export const conversations = signal<Conversation[]>([]);
export const models = signal<{ id: string; default: boolean }[]>([]);
export const selectedId = signal<string | undefined>(undefined);
export const messages = signal<Message[]>([]);
export const connection = signal<ChatSocketStatus>('closed');
/** A refusal or failure, in words, for the person to read. */
export const notice = signal<string | undefined>(undefined);
/** What is typed in the message box: a message the server refused comes back to it. */
export const draft = signal('');
/**
 * The message last sent (from the message box, or an edit), until the server stores it
 * (message.created: `stored` true) or refuses it (a chat.error first, or the connection
 * lost: false). A refused message from the box is given back to the box.
 */
let pending: { content: string; fromBox: boolean; settle: (stored: boolean) => void } | undefined;
const settlePending = (stored: boolean) => {
  const sent = pending;
  pending = undefined;
  if (!sent) return;
  if (!stored && sent.fromBox && !draft.value.trim()) draft.value = sent.content;
  sent.settle(stored);
};
/** The server answers with its built-in offline model (no provider configured; SPEC §1). */
export const offlineModel = signal(false);
export const usage = signal<
  | {
      messages: number;
      tokens: number;
      dailyMessages: number | null;
      dailyTokens: number | null;
      resetsAt: string;
    }
  | undefined
>(undefined);
export const searchHits = signal<Hit[] | undefined>(undefined);
/** More conversations than the list holds: the next page can be loaded. */
export const moreConversations = signal(false);
/** Where the shown messages start in the current branch: earlier ones can be loaded (0: none). */
export const earlier = signal(0);

/** The API's largest page (SPEC §2: `limit` 1–100). */
const PAGE = 100;

type Paged<T> = { items: T[]; count: number };

/**
 * Pages of a list from `from` up to `until` (or its end), read one after the other:
 * the items and the list's count, or the error of the page that failed.
 */
const readPages = async <T>(
  read: (offset: number) => Promise<{ data: Paged<T> | null; error: unknown }>,
  from: number,
  until: number,
): Promise<Paged<T> | { error: unknown }> => {
  const items: T[] = [];
  let count = 0;
  for (let offset = from; offset < until; offset += PAGE) {
    const { data, error } = await read(offset);
    if (!data) return { error };
    items.push(...data.items);
    count = data.count;
    if (data.items.length < PAGE) break;
  }
  return { items, count };
};

export const selected = computed(() => conversations.value.find((c) => c.id === selectedId.value));
export const streaming = computed(() => messages.value.some((m) => m.status === 'streaming'));

let socket: ChatSocket | undefined;

/** The words of an HTTP error body (SPEC §2): its detail, or each 422 item's message. */
const wordsOf = (error: unknown, fallback: string) => {
  const value = (error as { value?: { detail?: unknown } } | null)?.value;
  const detail = value?.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) return detail.map((item: { msg?: string }) => item.msg).join(' ');
  return fallback;
};

const fail = (error: unknown, fallback: string) => {
  notice.value = wordsOf(error, fallback);
};

// --- account -----------------------------------------------------------------------

export const logIn = async (name: string, password: string) => {
  const { data, error } = await api.token.pair.post({ username: name, password });
  if (!data) return fail(error, 'Could not log in.');
  notice.value = undefined;
  client.session.set({ access: data.access, refresh: data.refresh });
  await start();
};

export const register = async (name: string, email: string, password: string) => {
  const { error } = await api.auth.register.post({ username: name, email, password });
  if (error) return fail(error, 'Could not register.');
  await logIn(name, password);
};

export const logOut = async () => {
  const refresh = client.session.get()?.refresh;
  // The server closes the sockets of a logged-out token; this one goes first, so that it
  // does not take that for an expired token and try to renew it.
  socket?.close();
  socket = undefined;
  if (refresh) await api.auth.logout.post({ refresh });
  client.session.set(undefined);
  batch(() => {
    conversations.value = [];
    moreConversations.value = false;
    messages.value = [];
    earlier.value = 0;
    selectedId.value = undefined;
    usage.value = undefined;
    username.value = '';
    loaded.value = false;
  });
};

/** After sign-in (or on load with stored tokens): who, their conversations, models, usage. */
export const start = async () => {
  const me = await api.auth.me.get();
  if (!me.data) {
    client.session.set(undefined);
    return;
  }
  username.value = me.data.username;
  await Promise.all([loadConversations(), loadModels(), loadUsage(), loadModelMode()]);
  loaded.value = true;
  const wanted = location.hash.slice(1);
  const first = conversations.value.find((c) => c.id === wanted) ?? conversations.value[0];
  if (first && !selectedId.value) await open(first.id);
};

const loadUsage = async () => {
  const { data } = await api.usage.get({ query: { days: '1' } });
  if (!data) return;
  usage.value = {
    messages: data.quota.used_messages_today,
    tokens: data.quota.used_tokens_today,
    dailyMessages: data.quota.daily_messages,
    dailyTokens: data.quota.daily_tokens,
    resetsAt: data.quota.resets_at,
  };
};

/** Health says `"ai": "offline"` whether or not the rest is healthy (a 503 carries it too). */
const loadModelMode = async () => {
  const { data, error } = await api.health.get();
  const body = data ?? (error?.value as { ai?: string } | undefined);
  offlineModel.value = body?.ai === 'offline';
};

const loadModels = async () => {
  const { data } = await api.models.get();
  if (data) models.value = data.items;
};

// --- conversations -------------------------------------------------------------------

/** Bumped by every change made here: a list read before one of them is stale. */
let changes = 0;

const readConversations = (offset: number) =>
  api.conversations.get({ query: { limit: String(PAGE), offset: String(offset) } });

/** The list again, newest first, as far down as it was read (a page at least). */
export const loadConversations = async (): Promise<void> => {
  const asked = changes;
  const read = await readPages(readConversations, 0, Math.max(PAGE, conversations.value.length));
  if ('error' in read) return fail(read.error, 'Could not load your conversations.');
  if (asked !== changes) return loadConversations();
  batch(() => {
    conversations.value = read.items;
    moreConversations.value = read.count > read.items.length;
  });
};

/** The next page of older conversations, below the ones shown. */
export const loadMoreConversations = async () => {
  const asked = changes;
  const { data, error } = await readConversations(conversations.value.length);
  if (!data) return fail(error, 'Could not load more conversations.');
  if (asked !== changes) return loadConversations();
  const shown = new Set(conversations.value.map((c) => c.id));
  const all = [...conversations.value, ...data.items.filter((c) => !shown.has(c.id))];
  batch(() => {
    conversations.value = all;
    moreConversations.value = data.count > all.length;
  });
};

const replaceConversation = (conversation: Conversation) => {
  conversations.value = conversations.value.map((c) => (c.id === conversation.id ? conversation : c));
};

export const create = async (model: string | null) => {
  changes++;
  const { data, error } = await api.conversations.post({ model });
  if (!data) return fail(error, 'Could not start a conversation.');
  conversations.value = [data, ...conversations.value];
  await open(data.id);
};

export const rename = async (id: string, title: string) => {
  changes++;
  const { data, error } = await api.conversations({ id }).patch({ title });
  if (!data) return fail(error, 'Could not rename the conversation.');
  replaceConversation(data);
};

export const remove = async (id: string) => {
  changes++;
  const shown = selectedId.value === id;
  // Closed first: the server closes a deleted conversation's sockets (NO_CONVERSATION),
  // which this tab need not be told about.
  if (shown) {
    socket?.close();
    socket = undefined;
  }
  const { error } = await api.conversations({ id }).delete();
  if (error) {
    if (shown && selectedId.value === id) await open(id);
    return fail(error, 'Could not delete the conversation.');
  }
  conversations.value = conversations.value.filter((c) => c.id !== id);
  if (selectedId.value === id)
    batch(() => {
      selectedId.value = undefined;
      messages.value = [];
    });
};

export const search = async (q: string) => {
  if (!q.trim()) {
    searchHits.value = undefined;
    return;
  }
  const { data, error } = await api.conversations.search.get({ query: { q } });
  if (!data) return fail(error, 'Could not search.');
  searchHits.value = data.items.map((item) => ({
    conversation: item.conversation,
    snippet: item.message ? item.snippet : null,
  }));
};

// --- one conversation --------------------------------------------------------------

const readMessages = (id: string, offset: number, limit = PAGE) =>
  api.conversations({ id }).messages.get({ query: { limit: String(limit), offset: String(offset) } });

/** The conversation whose stored messages are shown (a live frame alone does not count). */
let messagesOf: string | undefined;

/**
 * The end of the current branch: its newest page, or from where the shown messages
 * start if that is earlier (earlier ones the person loaded stay). The first page,
 * read for the count, is kept when what is shown starts there.
 */
const loadMessages = async (id: string) => {
  const shownFrom = messagesOf === id ? earlier.value : Number.POSITIVE_INFINITY;
  const first = await readMessages(id, 0);
  if (selectedId.value !== id) return;
  if (!first.data) return fail(first.error, 'Could not load the messages.');
  const { count } = first.data;
  const from = Math.min(shownFrom, Math.max(0, count - PAGE));
  const rest =
    count > PAGE ? await readPages((offset) => readMessages(id, offset), from || PAGE, count) : undefined;
  if (selectedId.value !== id) return;
  if (rest && 'error' in rest) return fail(rest.error, 'Could not load the messages.');
  const items = [...(from === 0 ? first.data.items : []), ...(rest?.items ?? [])] as Message[];
  messagesOf = id;
  const live = socket?.reply;
  batch(() => {
    earlier.value = from;
    // A reply streaming now is not stored yet: shown from what the socket has seen.
    messages.value =
      live && !items.some((m) => m.id === live.messageId)
        ? [...items, streamingMessage(live.messageId, live.parentId, live.text)]
        : items;
  });
};

/** The page before the first message shown, above it. */
export const loadEarlierMessages = async () => {
  const id = selectedId.value;
  const to = earlier.value;
  if (!id || to === 0) return;
  const from = Math.max(0, to - PAGE);
  const { data, error } = await readMessages(id, from, to - from);
  if (selectedId.value !== id || earlier.value !== to) return;
  if (!data) return fail(error, 'Could not load earlier messages.');
  const shown = new Set(messages.value.map((m) => m.id));
  batch(() => {
    messages.value = [...(data.items as Message[]).filter((m) => !shown.has(m.id)), ...messages.value];
    earlier.value = from;
  });
};

const streamingMessage = (id: string, parentId: string, content: string): Message => ({
  id,
  role: 'assistant',
  content,
  status: 'streaming',
  parent_id: parentId,
  sibling_ids: [id],
});

const upsertStreaming = (id: string, parentId: string, content: string) => {
  const others = messages.value.filter((m) => m.id !== id);
  messages.value = [...others, streamingMessage(id, parentId, content)];
};

export const open = async (id: string) => {
  socket?.close();
  batch(() => {
    selectedId.value = id;
    messages.value = [];
    earlier.value = 0;
    messagesOf = undefined;
    notice.value = undefined;
    searchHits.value = undefined;
  });
  history.replaceState(null, '', `#${id}`);
  const chat = new ChatSocket({
    url: location.origin.replace(/^http/, 'ws'),
    conversationId: id,
    token: (renew) => client.accessToken(renew),
  });
  socket = chat;
  /** The answer's next render, while one waits for the screen's next frame. */
  let liveFrame: number | undefined;
  chat.onStatus((status, reason) => {
    if (socket !== chat) return;
    connection.value = status;
    if (status === 'reconnecting' || status === 'closed') settlePending(false);
    if (status === 'open') void loadMessages(id);
    if (reason === 'NO_CONVERSATION') notice.value = 'This conversation no longer exists.';
    if (reason === 'AUTH_FAILED') client.session.set(undefined);
  });
  chat.on('message.created', (frame) => {
    settlePending(true);
    messages.value = [...messages.value, frame.message as Message];
  });
  chat.on('chat.start', (frame) => upsertStreaming(frame.message_id, frame.parent_id, ''));
  chat.on('chat.resume', (frame) => upsertStreaming(frame.message_id, frame.parent_id, frame.content));
  chat.on('chat.stream', (frame) => {
    if (!frame.done) {
      // The answer so far is shown once per frame of the screen, not once per delta: a
      // model sends tens of deltas a second, and each render lays the page out again.
      // The socket keeps the text itself, so nothing a frame skips is lost.
      if (liveFrame !== undefined) return;
      liveFrame = requestAnimationFrame(() => {
        liveFrame = undefined;
        const live = chat.reply;
        if (socket !== chat || !live) return;
        messages.value = messages.value.map((m) =>
          m.id === live.messageId && m.content !== live.text ? { ...m, content: live.text } : m,
        );
      });
      return;
    }
    if (frame.done) {
      void loadMessages(id);
      void loadUsage();
    }
  });
  chat.on('chat.error', (frame) => {
    notice.value = frame.error;
    // Refused, or failed before it was stored: nothing was kept.
    settlePending(false);
    void loadMessages(id);
    void loadUsage();
  });
  chat.on('conversation.updated', (frame) => {
    const before = selected.value?.current_message_id;
    replaceConversation(frame.conversation);
    if (!streaming.value && frame.conversation.current_message_id !== before) void loadMessages(id);
  });
};

/** How long a frame waits for a conversation's socket that is still connecting. */
const CONNECTING_WAIT_MS = 10_000;

/** Resolves once `chat` is no longer connecting for the first time (or the wait is over). */
const settled = (chat: ChatSocket) =>
  new Promise<void>((resolve) => {
    if (chat.status !== 'connecting') return resolve();
    const done = () => {
      clearTimeout(timer);
      off();
      resolve();
    };
    const timer = setTimeout(done, CONNECTING_WAIT_MS);
    const off = chat.onStatus((status) => {
      if (status !== 'connecting') done();
    });
  });

/**
 * Sends through the conversation's socket. Sent while that socket is still making its
 * first connection (a chat just opened), the frame waits for it instead of being
 * refused; a socket that is reconnecting refuses it, and the person is told.
 */
const sendWhenOpen = async (frame: (chat: ChatSocket) => boolean) => {
  const chat = socket;
  if (chat) await settled(chat);
  const sent = chat !== undefined && socket === chat && frame(chat);
  if (sent) notice.value = undefined;
  else notice.value = 'Not connected. Reconnecting…';
  return sent;
};

/** Sends `frame` as the pending message: resolves whether the server stored it. */
const sendPending = async (content: string, fromBox: boolean, frame: (chat: ChatSocket) => boolean) => {
  // One still unanswered is no longer followed (not given back: it may yet be stored).
  pending?.settle(false);
  const stored = new Promise<boolean>((settle) => {
    pending = { content, fromBox, settle };
  });
  if (await sendWhenOpen(frame)) return { sent: true, stored };
  pending = undefined;
  return { sent: false, stored: Promise.resolve(false) };
};

/** A message from the box: whether it was sent (the box then empties; a refusal refills it). */
export const send = async (content: string) =>
  (await sendPending(content, true, (chat) => chat.message(content))).sent;
export const stop = () => sendWhenOpen((chat) => chat.stop());
export const regenerate = (messageId: string) => sendWhenOpen((chat) => chat.regenerate(messageId));
/** An edit: whether the server stored it (the editor stays open with its text when not). */
export const edit = async (messageId: string, content: string) =>
  (await sendPending(content, false, (chat) => chat.edit(messageId, content))).stored;

/** Shows the branch through `messageId` (one of a message's siblings). */
export const switchBranch = async (messageId: string) => {
  const id = selectedId.value;
  if (!id) return;
  const { data, error } = await api.conversations({ id }).patch({ current_message_id: messageId });
  if (!data) return fail(error, 'Could not switch branch.');
  replaceConversation(data);
  await loadMessages(id);
};
