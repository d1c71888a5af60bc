import { Elysia } from 'elysia';
import page from '../../../web/index.html';

interface Asset {
  body: Blob;
  type: string;
  etag: string;
  /** Named by its content: cached for good. */
  immutable: boolean;
}

/**
 * The web app's files by URL path. The binary carries them built (`bun build --compile`
 * bundles the HTML import ahead: `page.files`); from source, Bun's bundler builds them
 * in memory at the first request, so start-up does not wait for it.
 */
const build = async (): Promise<Map<string, Asset>> => {
  const assets = new Map<string, Asset>();
  if (page.files) {
    for (const file of page.files) {
      const name = file.path.slice(file.path.lastIndexOf('/') + 1);
      const html = file.loader === 'html';
      assets.set(html ? '/' : `/${name}`, {
        body: Bun.file(file.path),
        type: file.headers['content-type'],
        etag: `"${file.headers.etag}"`,
        immutable: !html,
      });
    }
    return assets;
  }
  const result = await Bun.build({ entrypoints: [page.index], minify: true, publicPath: '/' });
  if (!result.success) throw new AggregateError(result.logs, 'the web app did not build');
  for (const output of result.outputs) {
    const html = output.path.endsWith('.html');
    assets.set(html ? '/' : output.path.replace(/^\.\//, '/'), {
      body: output,
      type: output.type,
      etag: `"${output.hash ?? Bun.hash(await output.arrayBuffer()).toString(36)}"`,
      immutable: !html,
    });
  }
  return assets;
};

/** `GET /`: the chat web app (SPEC §14), offline, inside the server's CSP (lib/security.ts). */
export const webModule = () => {
  let assets: Promise<Map<string, Asset>> | undefined;
  const serve = async (path: string, request: Request) => {
    assets ??= build().catch((error) => {
      assets = undefined;
      throw error;
    });
    const asset = (await assets).get(path);
    if (!asset) return Response.json({ detail: 'Not found' }, { status: 404 });
    const headers = {
      'content-type': asset.type,
      etag: asset.etag,
      'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    };
    if (request.headers.get('if-none-match') === asset.etag)
      return new Response(null, { status: 304, headers });
    return new Response(asset.body, { headers });
  };
  return new Elysia({ name: 'web' })
    .get('/', ({ request }) => serve('/', request), { detail: { hide: true } })
    .get('/:file', ({ params, request }) => serve(`/${params.file}`, request), { detail: { hide: true } });
};
