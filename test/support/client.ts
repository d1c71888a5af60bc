/** A small REST client for tests: JSON in, status + JSON out. */

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by the tests themselves
type Json = any;

export const STRONG_PASSWORD = 'Correct-Horse-9-Battery';

let counter = 0;
export const uniqueUsername = (prefix = 'user') =>
  `${prefix}${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

export const createClient = (baseUrl: string) => {
  const request = async (
    method: string,
    path: string,
    options: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {},
  ): Promise<ApiResponse<Json>> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined || options.raw !== undefined)
      headers['content-type'] ??= 'application/json';
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
      redirect: 'manual',
    });
    const text = await response.text();
    let body: Json = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {}
    return { status: response.status, headers: response.headers, body };
  };

  const register = async (username = uniqueUsername(), password = STRONG_PASSWORD) => {
    const res = await request('POST', '/api/auth/register', {
      body: { username, email: `${username}@example.com`, password },
    });
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { ...res.body, password } as { id: string; username: string; email: string; password: string };
  };

  const login = async (username: string, password = STRONG_PASSWORD) => {
    const res = await request('POST', '/api/token/pair', { body: { username, password } });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { username: string; access: string; refresh: string };
  };

  /** A new user, logged in, with one conversation. */
  const signUp = async () => {
    const user = await register();
    const tokens = await login(user.username);
    const conversation = await request('POST', '/api/conversations/', { token: tokens.access, body: {} });
    return { user, ...tokens, conversationId: conversation.body.id as string };
  };

  return { request, register, login, signUp };
};

export type Client = ReturnType<typeof createClient>;

/**
 * `POST /api/chat` (SPEC §14) with one new user message, as the AI SDK's transport
 * sends it: the raw streaming response, for tests that read its bytes themselves.
 */
export const postChat = (baseUrl: string, access: string, conversationId: string, text: string) =>
  fetch(`${baseUrl}/api/chat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      id: conversationId,
      messages: [{ id: crypto.randomUUID(), role: 'user', parts: [{ type: 'text', text }] }],
      trigger: 'submit-message',
    }),
  });
