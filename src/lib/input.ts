import { Elysia } from 'elysia';
import { HttpError, unprocessable, type ValidationIssue } from './errors';
import { isUuid } from './uuid';

/**
 * The edge where hostile input is refused as a class, once for every route, present
 * and future (SPEC §2): bodies over the size limit, paths that cannot be decoded, and
 * text that the database cannot store.
 */

// Keys no request body of ours uses, and which are either prototype-pollution
// vectors or break code that stringifies the value (Elysia's own validation error
// calls String(value), which throws on an object whose toString is not a function).
const DROPPED_KEYS = new Set([
  '__proto__',
  'constructor',
  'prototype',
  ...Object.getOwnPropertyNames(Object.prototype),
]);

const reviver = (key: string, value: unknown) => (DROPPED_KEYS.has(key) ? undefined : value);

const tooLarge = (limit: number) =>
  new HttpError(413, `Request body is larger than ${limit} bytes`, 'payload_too_large');

/**
 * Reads a body up to `limit` bytes and no further: a chunked body that goes over is
 * cancelled at the limit, so a stream of huge bodies never grows memory.
 */
const readCapped = async (body: ReadableStream<Uint8Array> | null, limit: number) => {
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString('utf8');
};

/**
 * What routes with a body declare as their `parse`. `requestBody` below reads every
 * body before this would run; the name is for the OpenAPI document, which lists a
 * route's request body under the content types its named parsers take (with only a
 * function parser, it listed none, and Swagger UI showed no body at all).
 */
export const JSON_BODIES = 'json';

const isObject = (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value);

const refusedBodies = new WeakMap<Request, HttpError>();

/**
 * Why this request's body was refused, if it was. The error handler answers with it
 * when the route's body validation fails on `REFUSED` (below), which is after the
 * route has authenticated the request.
 */
export const refusedBodyOf = (request: Request) => refusedBodies.get(request);

/**
 * What a refused body parses to: it fails every route's body schema (all are
 * objects), and a route that takes no body never reads it. Not any other value:
 * Elysia's validation cleans a string, a number, an array or an object of unknown
 * keys into `{}` for a schema whose fields are all optional (a PATCH), and lets it pass.
 */
const REFUSED = null;

const refuse = (request: Request, error: HttpError) => {
  refusedBodies.set(request, error);
  return REFUSED;
};

/**
 * Bodies: a declared `Content-Length` over `limit` is a 413 before anything is read;
 * any other body is read through `readCapped` and parsed as JSON without the keys
 * above, whatever its Content-Type says, as Django Ninja reads a body (read as text,
 * a JSON body sent as `text/plain` or as curl's default form type had its fields
 * "missing", and a PATCH answered 200 having changed nothing).
 *
 * A body that is not JSON (400) or not a JSON object (422) is refused, but not here:
 * parsing runs before any hook can authenticate, and a Bearer route answers 401 to a
 * request without a valid token whatever it sent, as Django Ninja authenticates before
 * it reads the body. So the body parses to `REFUSED` and the refusal is kept for the
 * error handler; a route that takes no body (a delete, a stop) never looks at it.
 */
export const requestBody = (limit: number) =>
  new Elysia({ name: 'request-body' })
    .onRequest(({ request }) => {
      const declared = request.headers.get('content-length');
      if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
    })
    .onParse({ as: 'global' }, async ({ request }) => {
      const text = await readCapped(request.body, limit);
      // No body at all is an empty one, as Django reads it: `POST /api/conversations/`
      // or a logout with a JSON Content-Type and nothing after it is not malformed.
      if (text === '') return {};
      let body: unknown;
      try {
        body = JSON.parse(text, reviver);
      } catch {
        return refuse(request, new HttpError(400, 'Malformed request body'));
      }
      // Every JSON body of ours is an object. Validation takes an array for one (with
      // nothing required, `[1, 2]` passed as an empty change), so it is refused too.
      if (!isObject(body))
        return refuse(
          request,
          unprocessable([{ loc: ['body'], msg: 'The body must be a JSON object.', type: 'type_error' }]),
        );
      return body;
    });

/** The path of an absolute URL without parsing all of it (this runs on every request). */
const pathOf = (url: string) => {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const end = url.indexOf('?', start);
  return start === -1 ? '/' : url.slice(start, end === -1 ? undefined : end);
};

const decodes = (text: string) => {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
};

/** A path or query with broken percent-encoding (`%ZZ`, a lone `%`) is a 400, not a router crash. */
export const decodableUrl = () =>
  new Elysia({ name: 'decodable-url' }).onRequest(({ request }) => {
    const url = request.url;
    if (url.includes('%') && !decodes(pathOf(url))) throw new HttpError(400, 'Malformed URL');
  });

/**
 * Ids in paths are UUIDs, which name the same row in any letter case; they are
 * lower-cased before anything reads them, so that a conversation reached through
 * `/api/conversations/01A2…/stop` is the one whose reply, lock and sockets are kept
 * under `01a2…`.
 */
export const canonicalIds = () =>
  new Elysia({ name: 'canonical-ids' }).onTransform({ as: 'global' }, ({ params }) => {
    const values = params as Record<string, string> | undefined;
    for (const key in values) {
      const value = values[key];
      if (value !== undefined && isUuid(value)) values[key] = value.toLowerCase();
    }
  });

// NUL, which PostgreSQL refuses in text, and UTF-16 surrogates that pair with
// nothing, which cannot be encoded as UTF-8 at all (they would be stored as U+FFFD).
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what is refused
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Where in `value` (a parsed body, query or params) the first unstorable string is. */
const findUnstorable = (value: unknown, loc: (string | number)[] = []): (string | number)[] | null => {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? loc : null;
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorable(value[i], [...loc, i]);
      if (found) return found;
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    if (UNSTORABLE.test(key)) return [...loc, key];
    const found = findUnstorable((value as Record<string, unknown>)[key], [...loc, key]);
    if (found) return found;
  }
  return null;
};

const unstorable = (loc: (string | number)[]): ValidationIssue => ({
  loc,
  msg: 'Text must not contain NUL characters or unpaired UTF-16 surrogates',
  type: 'value_error',
});

/**
 * Text the database cannot store, in any field of the body, the query or the path,
 * is a 422 naming the field. `exempt` maps route templates to the error they answer
 * instead: the login route answers as for a wrong password, so nothing is revealed.
 */
export const storableText = (exempt: Record<string, () => HttpError> = {}) =>
  new Elysia({ name: 'storable-text' }).onBeforeHandle({ as: 'global' }, ({ body, query, params, route }) => {
    const found =
      findUnstorable(params, ['path']) ?? findUnstorable(query, ['query']) ?? findUnstorable(body, ['body']);
    if (!found) return;
    const instead = exempt[route] ?? exempt[route.replace(/\/$/, '')];
    throw instead ? instead() : unprocessable([unstorable(found)]);
  });
