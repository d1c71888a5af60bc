/**
 * Which methods a path answers to, read off the app's route templates, for a 405's
 * `Allow` header: `PUT /api/conversations/` is a method this API does not take on a
 * path it has (405), not a path it lacks (404), as Django Ninja answers it.
 */

export interface Route {
  method: string;
  path: string;
}

const literal = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** `/api/conversations/:id/stop` → a pattern for its paths, with or without a trailing slash. */
const patternOf = (template: string) => {
  const trimmed = template.replace(/\/+$/, '');
  const body = trimmed
    .split('/')
    .map((part) => (part.startsWith(':') ? '[^/]+' : part === '*' ? '.*' : literal(part)))
    .join('/');
  return new RegExp(`^${body}/?$`);
};

/** A WebSocket route is reached with a GET (the upgrade). */
const httpMethod = (method: string) => (method === 'WS' ? 'GET' : method);

/**
 * A catch-all at the root (the web app's `/:file`) claims every one-segment path; it
 * is left out, so that `POST /anything` is a 404 rather than a 405 naming GET.
 */
const catchAll = (template: string) => template.startsWith('/:') || template.startsWith('/*');

/** `routes` is read on the first call, when every route has been registered. */
export const allowedMethods = (routes: () => readonly Route[]) => {
  let table: { pattern: RegExp; method: string }[] | undefined;
  return (path: string) => {
    table ??= routes()
      .filter((route) => route.method !== 'ALL' && route.method !== 'OPTIONS' && !catchAll(route.path))
      .map((route) => ({ pattern: patternOf(route.path), method: httpMethod(route.method) }));
    const methods = new Set(table.filter((route) => route.pattern.test(path)).map((route) => route.method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods];
  };
};
