// The server's own ambient declarations (file imports, the binary's constants), so that a
// project importing this client type-checks the app type without knowing about them.
/// <reference path="../src/types.d.ts" />
import { treaty } from '@elysiajs/eden';
import type { App } from '../src/app';

export interface Tokens {
  access: string;
  refresh: string;
}

/** Where the client keeps the tokens: the web app's is localStorage, a script's a variable. */
export interface Session {
  get(): Tokens | undefined;
  set(tokens: Tokens | undefined): void;
}

/** Keeps the tokens in memory (scripts, tests). */
const memorySession = (): Session => {
  let tokens: Tokens | undefined;
  return {
    get: () => tokens,
    set: (next) => {
      tokens = next;
    },
  };
};

const REFRESH_PATH = '/api/token/refresh';

/**
 * The REST client: Eden Treaty over the app's type, sending the session's access token
 * and, when the server answers 401 to it, refreshing it once (`POST /api/token/refresh`)
 * and sending the request again. `session.set(undefined)` when the refresh is refused.
 */
export const createClient = (baseUrl: string, session: Session = memorySession()) => {
  let refreshing: Promise<boolean> | undefined;

  const refresh = () => {
    refreshing ??= (async () => {
      const tokens = session.get();
      if (!tokens) return false;
      const response = await fetch(`${baseUrl}${REFRESH_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh: tokens.refresh }),
      });
      if (!response.ok) {
        session.set(undefined);
        return false;
      }
      const body = (await response.json()) as { access: string; refresh?: string };
      session.set({ access: body.access, refresh: body.refresh ?? tokens.refresh });
      return true;
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };

  const authorized = (init: RequestInit | undefined) => {
    const headers = new Headers(init?.headers);
    const access = session.get()?.access;
    if (access && !headers.has('authorization')) headers.set('authorization', `Bearer ${access}`);
    return { ...init, headers };
  };

  const fetcher = (async (input: string | URL | Request, init?: RequestInit) => {
    const response = await fetch(input, authorized(init));
    const url = String(input instanceof Request ? input.url : input);
    if (response.status !== 401 || !session.get() || url.endsWith(REFRESH_PATH)) return response;
    if (!(await refresh())) return response;
    return fetch(input, authorized(init));
  }) as typeof fetch;

  return {
    /** Every REST route under `/api`, typed: `client.api.conversations.get({ query: {} })`. */
    api: treaty<App>(baseUrl, { fetcher }).api,
    session,
    /** A fresh access token (refreshed when `renew`), for the WebSocket's in-band auth. */
    accessToken: async (renew = false) => {
      if (renew) await refresh();
      return session.get()?.access;
    },
  };
};

export type Client = ReturnType<typeof createClient>;
