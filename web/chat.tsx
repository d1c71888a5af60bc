/** @jsxImportSource preact */
import { useSignal } from '@preact/signals';
import { memo } from 'preact/compat';
import { useEffect, useRef } from 'preact/hooks';
import { renderMarkdown } from './markdown';
import {
  connection,
  create,
  draft,
  earlier,
  edit,
  loadEarlierMessages,
  type Message,
  messages,
  notice,
  offlineModel,
  regenerate,
  selected,
  send,
  stop,
  streaming,
  switchBranch,
} from './state';

const STATUS_WORDS: Partial<Record<Message['status'], string>> = {
  interrupted: 'Stopped',
  failed: 'Failed',
};

/** `< 2 / 3 >`: the message's place among its siblings, and the way to the others. */
const Branches = ({ message }: { message: Message }) => {
  const siblings = message.sibling_ids;
  if (siblings.length < 2) return null;
  const index = siblings.indexOf(message.id);
  const go = (to: number) => {
    const id = siblings[to];
    if (id) void switchBranch(id);
  };
  return (
    <span class="branches">
      <button
        type="button"
        aria-label="Previous version"
        disabled={index <= 0 || streaming.value}
        onClick={() => go(index - 1)}
      >
        ‹
      </button>
      <output aria-label="Version">
        {index + 1} / {siblings.length}
      </output>
      <button
        type="button"
        aria-label="Next version"
        disabled={index >= siblings.length - 1 || streaming.value}
        onClick={() => go(index + 1)}
      >
        ›
      </button>
    </span>
  );
};

const Editor = ({ message, done }: { message: Message; done: () => void }) => {
  const text = useSignal(message.content);
  return (
    <form
      class="editor"
      onSubmit={(event) => {
        event.preventDefault();
        if (text.value.trim()) void edit(message.id, text.value).then((sent) => sent && done());
      }}
    >
      <textarea
        aria-label="Edit message"
        value={text.value}
        ref={(area) => area?.focus()}
        onInput={(event) => (text.value = event.currentTarget.value)}
        onKeyDown={(event) => {
          if (event.key === 'Escape') done();
          // As in the message box: Enter sends, Shift+Enter starts a new line.
          if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            event.currentTarget.form?.requestSubmit();
          }
        }}
      />
      <div class="actions">
        <button type="submit">Send edit</button>
        <button type="button" onClick={done}>
          Cancel
        </button>
      </div>
    </form>
  );
};

/** Rendered again only when its message changes (a delta changes one message, not the other 100). */
const MessageView = memo(({ message }: { message: Message }) => {
  const editing = useSignal(false);
  const busy = streaming.value;
  return (
    <article
      class={`message ${message.role} ${message.status}`}
      aria-label={message.role === 'user' ? 'You' : 'Assistant'}
      data-status={message.status}
    >
      {editing.value ? (
        <Editor message={message} done={() => (editing.value = false)} />
      ) : message.role === 'user' ? (
        <p class="text">{message.content}</p>
      ) : (
        // DOMPurify's output, from Markdown whose raw HTML was escaped (markdown.ts).
        <div
          class="text markdown"
          dangerouslySetInnerHTML={{
            __html: renderMarkdown(message.content, message.status !== 'streaming'),
          }}
        />
      )}
      <footer>
        <Branches message={message} />
        {STATUS_WORDS[message.status] && <span class="status">{STATUS_WORDS[message.status]}</span>}
        {message.role === 'user' && !editing.value && (
          <button type="button" disabled={busy} onClick={() => (editing.value = true)}>
            Edit
          </button>
        )}
        {message.role === 'assistant' && message.status !== 'streaming' && (
          <button type="button" disabled={busy} onClick={() => regenerate(message.id)}>
            Regenerate
          </button>
        )}
      </footer>
    </article>
  );
});

const Composer = () => {
  const text = draft;
  /** A message waiting for the socket to connect: Enter again does not send it twice. */
  const sending = useSignal(false);
  const submit = async () => {
    const content = text.value;
    if (!content.trim() || streaming.value || sending.value) return;
    sending.value = true;
    const sent = await send(content);
    sending.value = false;
    // What was typed meanwhile stays.
    if (sent && text.value === content) text.value = '';
  };
  return (
    <form
      class="composer"
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
    >
      <textarea
        aria-label="Message"
        placeholder="Send a message (Enter to send, Shift+Enter for a new line)"
        value={text.value}
        onInput={(event) => (text.value = event.currentTarget.value)}
        onKeyDown={(event) => {
          if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            void submit();
          }
        }}
      />
      {streaming.value ? (
        <button type="button" class="stop" onClick={() => void stop()}>
          Stop
        </button>
      ) : (
        <button type="submit" disabled={connection.value !== 'open'}>
          Send
        </button>
      )}
    </form>
  );
};

/** Said on every chat view while the server has no real model behind it. */
const OfflineNote = () =>
  offlineModel.value ? (
    <p class="offline-model" role="note">
      This server has no AI provider configured (no <code>OPENAI_API_KEY</code>): answers come from its
      built-in offline model, which only echoes your message.
    </p>
  ) : null;

const CONNECTION_WORDS: Record<string, string> = {
  connecting: 'Connecting…',
  reconnecting: 'Connection lost. Reconnecting…',
};

export const Chat = () => {
  const list = useRef<HTMLDivElement>(null);
  const items = messages.value;
  // What the list ended with and how tall it was. With the same last message (earlier
  // ones put above, or the answer growing) the view keeps its distance from the end;
  // a new last message scrolls to it.
  const last = useRef<{ id?: string; height: number }>({ height: 0 });
  useEffect(() => {
    const element = list.current;
    if (!element) return;
    const lastId = items.at(-1)?.id;
    if (lastId !== undefined && lastId === last.current.id)
      element.scrollTop += element.scrollHeight - last.current.height;
    else element.scrollTop = element.scrollHeight;
    last.current = { id: lastId, height: element.scrollHeight };
  }, [items]);
  const conversation = selected.value;
  if (!conversation)
    return (
      <main class="chat empty">
        <OfflineNote />
        <p>Start a new chat, or pick one.</p>
        {/* On a phone the sidebar is behind its menu; this starts one with the default model. */}
        <button type="button" onClick={() => void create(null)}>
          Start a chat
        </button>
        {notice.value && (
          <p class="notice" role="alert">
            {notice.value}
          </p>
        )}
      </main>
    );
  const words = CONNECTION_WORDS[connection.value];
  return (
    <main class="chat">
      <h2 class="conversation-title">{conversation.title}</h2>
      <OfflineNote />
      {words && (
        <p class="connection" role="status">
          {words}
        </p>
      )}
      <div class="messages" ref={list} aria-live="polite">
        {earlier.value > 0 && (
          <button type="button" class="more" onClick={() => void loadEarlierMessages()}>
            Show earlier messages
          </button>
        )}
        {items.map((message) => (
          <MessageView key={message.id} message={message} />
        ))}
      </div>
      {notice.value && (
        <p class="notice" role="alert">
          {notice.value}
        </p>
      )}
      <Composer />
    </main>
  );
};
