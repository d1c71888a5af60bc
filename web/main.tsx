/** @jsxImportSource preact */
import { useSignal } from '@preact/signals';
import { render } from 'preact';
import { Chat } from './chat';
import {
  conversations,
  create,
  loadConversations,
  loaded,
  loadMoreConversations,
  logIn,
  logOut,
  models,
  moreConversations,
  notice,
  open,
  register,
  remove,
  rename,
  search,
  searchHits,
  selectedId,
  signedIn,
  start,
  usage,
  username,
} from './state';

const SignIn = () => {
  const mode = useSignal<'login' | 'register'>('login');
  const busy = useSignal(false);
  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const name = String(form.get('username') ?? '');
    const password = String(form.get('password') ?? '');
    busy.value = true;
    try {
      if (mode.value === 'login') await logIn(name, password);
      else await register(name, String(form.get('email') ?? ''), password);
    } finally {
      busy.value = false;
    }
  };
  const registering = mode.value === 'register';
  return (
    <main class="signin">
      <h1>Chatbot</h1>
      <form onSubmit={submit} aria-label={registering ? 'Register' : 'Log in'}>
        <label>
          Username
          <input name="username" autocomplete="username" required />
        </label>
        {registering && (
          <label>
            Email
            <input name="email" type="email" autocomplete="email" required />
          </label>
        )}
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete={registering ? 'new-password' : 'current-password'}
            required
          />
        </label>
        {notice.value && (
          <p class="notice" role="alert">
            {notice.value}
          </p>
        )}
        <button type="submit" disabled={busy.value}>
          {registering ? 'Create account' : 'Log in'}
        </button>
      </form>
      <button
        type="button"
        class="link"
        onClick={() => {
          notice.value = undefined;
          mode.value = registering ? 'login' : 'register';
        }}
      >
        {registering ? 'I have an account: log in' : 'New here? Create an account'}
      </button>
    </main>
  );
};

const Usage = () => {
  const today = usage.value;
  if (!today) return null;
  const limit = (used: number, max: number | null, unit: string) =>
    max === null ? `${used} ${unit}${used === 1 ? '' : 's'}` : `${used} / ${max} ${unit}s`;
  return (
    <output class="usage" aria-label="Usage today">
      Today: {limit(today.messages, today.dailyMessages, 'message')} ·{' '}
      {limit(today.tokens, today.dailyTokens, 'token')}
    </output>
  );
};

const ConversationItem = ({ id, title }: { id: string; title: string }) => {
  const editing = useSignal(false);
  if (editing.value)
    return (
      <li>
        <form
          class="rename"
          onSubmit={async (event) => {
            event.preventDefault();
            const value = String(new FormData(event.currentTarget).get('title') ?? '').trim();
            if (value) await rename(id, value);
            editing.value = false;
          }}
        >
          <input
            name="title"
            aria-label="New title"
            value={title}
            ref={(input) => input?.focus()}
            onKeyDown={(event) => {
              if (event.key === 'Escape') editing.value = false;
            }}
          />
          <button type="submit">Save</button>
        </form>
      </li>
    );
  return (
    <li class={selectedId.value === id ? 'current' : ''}>
      <button
        type="button"
        class="title"
        aria-current={selectedId.value === id ? 'page' : undefined}
        onClick={() => open(id)}
      >
        {title}
      </button>
      <button
        type="button"
        class="icon"
        aria-label={`Rename ${title}`}
        onClick={() => (editing.value = true)}
      >
        ✎
      </button>
      <button
        type="button"
        class="icon"
        aria-label={`Delete ${title}`}
        onClick={() => confirm(`Delete “${title}”?`) && remove(id)}
      >
        ✕
      </button>
    </li>
  );
};

const Sidebar = ({ onPick }: { onPick: () => void }) => {
  const model = useSignal('');
  return (
    <nav class="sidebar" aria-label="Conversations">
      <form
        class="new"
        onSubmit={async (event) => {
          event.preventDefault();
          await create(model.value || null);
          onPick();
        }}
      >
        <select
          aria-label="Model"
          value={model.value}
          onChange={(event) => (model.value = event.currentTarget.value)}
        >
          <option value="">Default model</option>
          {models.value.map((m) => (
            <option key={m.id} value={m.id}>
              {m.id}
            </option>
          ))}
        </select>
        <button type="submit">New chat</button>
      </form>
      <input
        type="search"
        aria-label="Search conversations"
        placeholder="Search…"
        onInput={(event) => search(event.currentTarget.value)}
      />
      {searchHits.value ? (
        <ul class="hits" aria-label="Search results">
          {searchHits.value.length === 0 && <li>No matches.</li>}
          {searchHits.value.map((hit) => (
            <li key={hit.conversation.id}>
              <button
                type="button"
                onClick={async () => {
                  await open(hit.conversation.id);
                  onPick();
                }}
              >
                <strong>{hit.conversation.title}</strong>
                {hit.snippet && <span class="snippet">{hit.snippet}</span>}
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <>
          <ul class="list">
            {conversations.value.map((c) => (
              <ConversationItem key={c.id} id={c.id} title={c.title} />
            ))}
          </ul>
          {moreConversations.value && (
            <button type="button" class="more" onClick={() => void loadMoreConversations()}>
              Load more conversations
            </button>
          )}
        </>
      )}
    </nav>
  );
};

const App = () => {
  const menu = useSignal(false);
  if (!signedIn.value) return <SignIn />;
  if (!loaded.value)
    return (
      <p class="loading" role="status">
        Loading…
      </p>
    );
  return (
    <div class={menu.value ? 'layout menu-open' : 'layout'}>
      <header>
        <button
          type="button"
          class="menu"
          aria-expanded={menu.value}
          aria-controls="sidebar"
          onClick={() => (menu.value = !menu.value)}
        >
          ☰ Chats
        </button>
        <strong class="brand">Chatbot</strong>
        <Usage />
        <span class="who">{username.value}</span>
        <button type="button" onClick={logOut}>
          Log out
        </button>
      </header>
      <div id="sidebar">
        <Sidebar onPick={() => (menu.value = false)} />
      </div>
      <Chat />
    </div>
  );
};

const root = document.getElementById('app');
if (root) render(<App />, root);
if (signedIn.value) void start();
window.addEventListener('focus', () => {
  if (signedIn.value) void loadConversations();
});
