import { openapi } from '@elysiajs/openapi';
import { SwaggerUIRender } from '@elysiajs/openapi/swagger';
import { FormatRegistry } from '@sinclair/typebox';
import { Elysia } from 'elysia';
import { fullFormats } from 'elysia/type-system/format';
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' };
import swaggerBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' };
import { isEmail } from './email';
import { isUuid } from './uuid';

/**
 * The string formats put back after @elysiajs/openapi is loaded. The plugin bundles
 * @sinclair/typemap, whose zod and valibot adapters replace TypeBox's global formats
 * (uuid, email, url, ipv4, …) with checks that build a new zod schema on every call:
 * ~9 µs per checked string warm, far more cold and in garbage, on every request and
 * response carrying one (a page of 20 conversations checks 20 uuids). These are
 * Elysia's own checks for those names (ajv-formats' patterns), which Elysia
 * registers only where nothing is registered yet. `date-time` keeps Elysia's own
 * lenient check (the plugin does not touch it); `date` and the formats Elysia has no
 * check for (`cuid`, `emoji`, `jwt`, …) stay as the plugin set them: nothing here
 * uses them. `uuid` is stricter than Elysia's, which also takes a `urn:uuid:` prefix
 * that PostgreSQL cannot read (src/lib/uuid.ts); `email` is Django's, which takes a
 * domain in any script (src/lib/email.ts).
 */
export const restoredFormats = new Map<string, (value: string) => boolean>();
for (const [name, format] of Object.entries(fullFormats)) {
  if (name === 'date' || name === 'date-time') continue;
  const check =
    name === 'uuid'
      ? isUuid
      : name === 'email'
        ? isEmail
        : format instanceof RegExp
          ? (value: string) => format.test(value)
          : typeof format === 'function'
            ? (format as (value: string) => boolean)
            : undefined;
  if (!check) continue;
  FormatRegistry.Set(name, check);
  restoredFormats.set(name, check);
}

const ASSETS = '/api/docs/assets';
const SPEC_PATH = '/api/openapi.json';

type Operations = Record<
  string,
  {
    responses?: Record<string, { content?: object }>;
    security?: object[];
    [DOCUMENTED]?: Record<string, { content?: object }>;
  }
>;

/**
 * A route's answers described by hand (`detail: { [DOCUMENTED]: { 200: … } }`), for a
 * route that answers with Responses of its own, which the plugin cannot read off a
 * schema. (The plugin replaces a route's `detail.responses` with the ones it derives.)
 */
export const DOCUMENTED = 'x-documented-responses';

/**
 * Takes TypeBox's `error` option (the words of our 422s, a string on a schema) out of
 * every schema below `node`: it is no OpenAPI keyword, and strict linters refuse it. A
 * property named `error` is a schema (an object), not a string, and stays.
 */
const dropErrorOptions = (node: unknown): void => {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const item of node) dropErrorOptions(item);
    return;
  }
  const record = node as Record<string, unknown>;
  if (typeof record.error === 'string') delete record.error;
  for (const [key, value] of Object.entries(record))
    if (key !== 'example' && key !== 'examples') dropErrorOptions(value);
};

/**
 * The document as the plugin wrote it, mended in place (the plugin hands out the same
 * cached document every time):
 * - the hand-described answers join the derived ones;
 * - @elysiajs/openapi 1.4 writes a response without a body (`t.Void()`: a 204) as
 *   `content: {"type": "void"}`, which is no media type map, so validators refuse the
 *   whole document. Such a response has no content; this takes it away;
 * - an operation the auth guard did not mark (auth/guard.ts) needs no token, and says
 *   so (`security: []`), as linters ask every operation to;
 * - TypeBox's `error` option leaves the schemas, and the server is named (`/`: this one).
 */
const mended = new WeakSet<object>();
const mendDocument = (document: unknown) => {
  const doc = document as { paths?: Record<string, Operations>; servers?: object[] } | undefined;
  // The plugin's cached document is mended once, not walked again on every request.
  if (!doc || typeof doc !== 'object' || mended.has(doc)) return;
  mended.add(doc);
  for (const operations of Object.values(doc.paths ?? {}))
    for (const operation of Object.values(operations)) {
      const documented = operation[DOCUMENTED];
      if (documented) {
        operation.responses = { ...operation.responses, ...documented };
        delete operation[DOCUMENTED];
      }
      for (const response of Object.values(operation.responses ?? {}))
        if (response.content && typeof (response.content as { type?: unknown }).type === 'string')
          delete response.content;
      operation.security ??= [];
    }
  dropErrorOptions(doc.paths);
  dropErrorOptions((doc as { components?: unknown }).components);
  doc.servers ??= [{ url: '/', description: 'This server' }];
};

const files: Record<string, { path: string; type: string }> = {
  'swagger-ui.css': { path: swaggerCss, type: 'text/css; charset=utf-8' },
  'swagger-ui-bundle.js': { path: swaggerBundle, type: 'text/javascript; charset=utf-8' },
};

/**
 * Swagger UI at /api/docs and the OpenAPI document at /api/openapi.json. The UI's
 * files are served from swagger-ui-dist (embedded in the binary), not a CDN, so
 * the docs work on an air-gapped network.
 *
 * The page is our own route, not the plugin's: the plugin serves it as a fixed
 * Response, and a fixed Response under a route hook (the document's mend below)
 * went out without the request's id and was never logged.
 */
export const docs = (version: string) => {
  const info = {
    title: 'Chatbot API',
    version,
    description:
      'REST API of the chatbot. Chat itself happens over the WebSocket at /ws/chat/{conversation_id}/ (see the README).',
  };
  const page = SwaggerUIRender(info, {
    url: SPEC_PATH,
    dom_id: '#swagger-ui',
    version: 'latest',
    autoDarkMode: true,
    theme: `${ASSETS}/swagger-ui.css`,
    cdn: `${ASSETS}/swagger-ui-bundle.js`,
    // No icon of its own: without one the browser asks for /favicon.ico, a 404.
  }).replace('</head>', '<link rel="icon" href="data:," />\n</head>');
  return (
    new Elysia({ name: 'docs' })
      // Before the plugin, so it applies to the plugin's route too.
      .onAfterHandle(({ path, responseValue }) => {
        if (path.replace(/\/$/, '') === SPEC_PATH) mendDocument(responseValue);
      })
      .use(
        openapi({
          specPath: SPEC_PATH,
          provider: null,
          exclude: { paths: [/^\/api\/docs/, /^\/ws\//] },
          documentation: {
            info,
            tags: [
              { name: 'health', description: 'Service health' },
              { name: 'auth', description: 'Accounts and sessions' },
              { name: 'token', description: 'JWT access and refresh tokens' },
              { name: 'conversations', description: 'Conversations and their messages' },
              { name: 'usage', description: 'Your usage per day and your daily quota' },
              { name: 'admin', description: 'Staff only: users, their quotas, usage across users' },
            ],
            components: {
              securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
            },
          },
        }),
      )
      .get(
        '/api/docs',
        () => new Response(page, { headers: { 'content-type': 'text/html; charset=utf-8' } }),
        { detail: { hide: true } },
      )
      .get(
        `${ASSETS}/:file`,
        ({ params, status }) => {
          const file = files[params.file];
          if (!file) return status(404, { detail: 'Not found' });
          return new Response(Bun.file(file.path), {
            headers: { 'content-type': file.type, 'cache-control': 'public, max-age=86400' },
          });
        },
        { detail: { hide: true } },
      )
  );
};
