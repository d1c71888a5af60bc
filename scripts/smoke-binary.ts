/**
 * Builds the single binary as the Dockerfile's build stage does, copies it alone into
 * an empty directory and drives it end to end: health, register, login, a
 * conversation and one streamed WebSocket answer from an OpenAI-compatible stub. Runs
 * against DATABASE_URL/REDIS_URL when set (a fresh database is created), and always
 * against the embedded defaults. Used by .ci/run; exits non-zero on any failure.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import postgres from 'postgres';
import { createClient } from '../test/support/client';
import { startOpenAIStub } from '../test/support/openai-stub';
import { connectAuthenticated } from '../test/support/ws';

const root = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'chatbot-binary-'));
const binary = join(dir, 'chatbot-api');
const check = (ok: unknown, what: string) => {
  if (!ok) throw new Error(`smoke: ${what}`);
  console.log(`  ok  ${what}`);
};

/**
 * The Dockerfile's build stage without an engine (none here): its COPY lines copy from
 * the repository into a scratch directory standing for its WORKDIR, and its RUN lines
 * run there, in order, with this machine's Bun. Only the base image is not what it
 * uses. What the stage leaves at `<WORKDIR>/chatbot-api` is the binary.
 */
const buildAsTheDockerfileDoes = () => {
  // A line ending in a backslash goes on on the next one.
  const lines = readFileSync(join(root, 'Dockerfile'), 'utf8').replaceAll(/\\\n/g, ' ').split('\n');
  const from = lines.findIndex((line) => /^FROM \S+ AS build$/i.test(line));
  const end = lines.findIndex((line, i) => i > from && /^FROM /i.test(line));
  if (from < 0 || end < 0) throw new Error('smoke: the Dockerfile has no build stage');
  const stage = join(dir, 'build');
  let workdir = '';
  for (const line of lines.slice(from + 1, end)) {
    const [instruction, ...args] = line.trim().split(/\s+/);
    if (instruction === 'WORKDIR') workdir = args[0] ?? '';
    else if (instruction === 'COPY') {
      const destination = args.at(-1) ?? '.';
      const sources = args.slice(0, -1);
      const intoFolder = destination.endsWith('/') || sources.length > 1;
      for (const source of sources)
        cpSync(join(root, source), join(stage, destination, intoFolder ? basename(source) : ''), {
          recursive: true,
        });
    } else if (instruction === 'RUN') {
      const command = args.join(' ').replaceAll(workdir, stage);
      console.log(`binary smoke: RUN ${command}`);
      const run = Bun.spawnSync(['sh', '-c', command], { cwd: stage, stdout: 'inherit', stderr: 'inherit' });
      if (run.exitCode !== 0) throw new Error(`smoke: the Dockerfile's \`RUN ${args.join(' ')}\` failed`);
    }
  }
  cpSync(join(stage, 'chatbot-api'), binary);
  rmSync(stage, { recursive: true, force: true });
};
try {
  buildAsTheDockerfileDoes();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
}
const stub = startOpenAIStub();
await stub.ready;

const drive = async (label: string, env: Record<string, string>) => {
  console.log(`binary smoke: ${label}`);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = Bun.spawn([binary], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      OPENAI_API_KEY: 'sk-smoke',
      OPENAI_BASE_URL: stub.url,
      // Small, so the second message's history is trimmed by the tokenizer's worker.
      AI_MAX_CONTEXT_TOKENS: '100',
      ...env,
    },
    stdout: 'ignore',
    stderr: 'inherit',
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    let health: Response | undefined;
    for (let i = 0; i < 60 && !health; i++) {
      health = await fetch(`${base}/api/health/`).catch(() => undefined);
      if (!health) await Bun.sleep(250);
    }
    check(health?.status === 200, `health answers 200 (${JSON.stringify(await health?.json())})`);
    const api = createClient(base);
    const me = await api.signUp();
    check(me.conversationId, 'register, login and create a conversation');
    const docs = await fetch(`${base}/api/docs/assets/swagger-ui-bundle.js`);
    check(docs.status === 200, 'Swagger UI assets are embedded');
    const page = await fetch(`${base}/`);
    const html = await page.text();
    const script = /src="(\/[^"]+\.js)"/.exec(html)?.[1];
    const bundle = script ? await fetch(`${base}${script}`) : undefined;
    check(
      page.status === 200 && bundle?.status === 200 && (await bundle.text()).length > 10_000,
      'the web app and its script are embedded',
    );
    const ws = await connectAuthenticated(`ws://127.0.0.1:${port}`, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: 'Hello from the binary' });
    const { deltas, final } = await ws.reply();
    check(
      final.done === true && deltas.join('') === 'Hello, this is the stub.',
      'one streamed WebSocket answer',
    );
    const long = `${'word '.repeat(80)}end`;
    ws.send({ type: 'chat.message', content: long });
    const trimmed = await ws.reply();
    const sent = stub.requestsFor(long).at(-1)?.messages ?? [];
    check(
      trimmed.final.done === true && sent.length === 2 && sent[0]?.role === 'system',
      'a history over AI_MAX_CONTEXT_TOKENS is trimmed (the tokenizer worker is embedded)',
    );
    ws.close();
    const messages = await api.request('GET', `/api/conversations/${me.conversationId}/messages`, {
      token: me.access,
    });
    check(messages.body.count === 4, 'every message stored');
  } finally {
    server.kill('SIGTERM');
    check((await server.exited) === 0, 'exits 0 on SIGTERM');
  }
};

let failed = false;
const pgUrl = process.env.DATABASE_URL;
let dropDatabase = async () => {};
try {
  if (pgUrl?.startsWith('postgres')) {
    const name = `chatbot_smoke_${Date.now().toString(36)}`;
    const admin = postgres(pgUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database "${name}"`);
    dropDatabase = async () => {
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    };
    const url = new URL(pgUrl);
    url.pathname = `/${name}`;
    await drive('PostgreSQL + Redis', {
      DATABASE_URL: url.toString(),
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, REDIS_KEY_PREFIX: `${name}:` } : {}),
    });
  }
  await drive('embedded defaults', {});
} catch (error) {
  console.error(error);
  failed = true;
} finally {
  await dropDatabase();
  stub.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
