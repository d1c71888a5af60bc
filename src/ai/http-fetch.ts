import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

/**
 * A `fetch` for the openai client built on node:http. Bun's own fetch keeps reading
 * a response body into memory while nobody consumes it; this one pauses the TCP
 * socket when the body stream is full, so a reply we stop reading (because the
 * WebSocket client is backed up) also stops coming from the provider (SPEC §10).
 */
export const backpressureFetch = async (input: string | URL | Request, init: RequestInit = {}) => {
  const url = new URL(input instanceof Request ? input.url : input);
  const transport = url.protocol === 'https:' ? https : http;
  const headers = new Headers(init.headers);
  const body =
    init.body === undefined || init.body === null ? undefined : await new Response(init.body).bytes();
  if (body) headers.set('content-length', String(body.length));

  return new Promise<Response>((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: init.method ?? 'GET',
        headers: Object.fromEntries(headers),
        agent: agents[url.protocol as keyof typeof agents],
        signal: init.signal ?? undefined,
      },
      (incoming) => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(incoming.headers))
          if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
        resolve(
          new Response(Readable.toWeb(incoming) as ReadableStream<Uint8Array>, {
            status: incoming.statusCode ?? 500,
            statusText: incoming.statusMessage,
            headers: responseHeaders,
          }),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
};
