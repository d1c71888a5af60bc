import { openapi } from '@elysiajs/openapi';
import { Elysia } from 'elysia';
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' };
import swaggerBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' };

const ASSETS = '/api/docs/assets';
const files: Record<string, { path: string; type: string }> = {
  'swagger-ui.css': { path: swaggerCss, type: 'text/css; charset=utf-8' },
  'swagger-ui-bundle.js': { path: swaggerBundle, type: 'text/javascript; charset=utf-8' },
};

/**
 * Swagger UI at /api/docs and the OpenAPI document at /api/openapi.json. The UI's
 * files are served from swagger-ui-dist (embedded in the binary), not a CDN, so
 * the docs work on an air-gapped network.
 */
export const docs = (version: string) =>
  new Elysia({ name: 'docs' })
    .use(
      openapi({
        path: '/api/docs',
        specPath: '/api/openapi.json',
        provider: 'swagger-ui',
        swagger: {
          theme: `${ASSETS}/swagger-ui.css`,
          cdn: `${ASSETS}/swagger-ui-bundle.js`,
          // Absolute: the plugin's default is relative and resolves to /api/api/openapi.json.
          ...({ url: '/api/openapi.json' } as object),
        },
        exclude: { paths: [/^\/api\/docs/, /^\/ws\//] },
        documentation: {
          info: {
            title: 'Chatbot API',
            version,
            description:
              'REST API of the chatbot. Chat itself happens over the WebSocket at /ws/chat/{conversation_id}/ (see the README).',
          },
          tags: [
            { name: 'health', description: 'Service health' },
            { name: 'auth', description: 'Accounts and sessions' },
            { name: 'token', description: 'JWT access and refresh tokens' },
            { name: 'conversations', description: 'Conversations and their messages' },
          ],
          components: {
            securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
          },
        },
      }),
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
    );
