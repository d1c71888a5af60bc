import { afterEach, describe, expect, test } from 'bun:test';
import { tidyTitle } from '../../../src/modules/chat/titles';
import { type Client, createClient } from '../../support/client';
import { DEFAULT_TOKENS, startOpenAIStub } from '../../support/openai-stub';
import { startServer, type TestServer } from '../../support/server';
import { until } from '../../support/wait';
import { connectAuthenticated } from '../../support/ws';

/**
 * SPEC §12, titles: after a conversation's first complete reply the model names it,
 * off the reply's path (after the done frame, the lock released), never replacing an
 * owner's title; a failing or slow title call changes nothing else.
 */

const servers: TestServer[] = [];
// Each test's server stops when the test ends, so that the next test reuses its
// emptied database instead of cloning a new one (~350 ms of CPU each).
afterEach(() => Promise.all(servers.splice(0).map((s) => s.stop())));

const start = async (env: Record<string, string> = {}, options: Parameters<typeof startServer>[1] = {}) => {
  const server = await startServer({ AI_TITLES: 'true', CHAT_RATE_LIMIT: '1000', ...env }, options);
  servers.push(server);
  return { server, api: createClient(server.url) };
};

const titleRequests = (server: TestServer) =>
  server.stub.requests.filter((r) => r.messages[0]?.content.startsWith('Write a short title'));

const session = async (server: TestServer, api: Client, body: Record<string, unknown> = {}) => {
  const me = await api.signUp();
  const conversationId = (await api.request('POST', '/api/conversations/', { token: me.access, body })).body
    .id;
  const ws = await connectAuthenticated(server.wsUrl, conversationId, me.access);
  const conversation = async () =>
    (await api.request('GET', `/api/conversations/${conversationId}`, { token: me.access })).body;
  return { me, conversationId, ws, conversation };
};

describe('automatic titles', () => {
  test('after the first complete reply: asked of the model after the done frame, stored, sent as conversation.updated', async () => {
    const { server, api } = await start();
    const { ws, conversation } = await session(server, api);
    ws.send({ type: 'chat.message', content: 'Plan a week in Kyoto' });
    await ws.reply();
    const doneAt = ws.frames.length;
    const updated = await ws.next((f) => f.type === 'conversation.updated');
    expect(ws.frames.indexOf(updated)).toBeGreaterThanOrEqual(doneAt);
    expect(updated.conversation.title).toBe(DEFAULT_TOKENS.join(''));
    expect((await conversation()).title).toBe(DEFAULT_TOKENS.join(''));
    const [request] = titleRequests(server);
    expect(request?.model).toBe('gpt-4o-mini');
    expect(request?.messages[1]?.content).toContain('Plan a week in Kyoto');
    // A second reply asks for no second title.
    ws.send({ type: 'chat.message', content: 'And Osaka?' });
    await ws.reply();
    await Bun.sleep(200);
    expect(titleRequests(server)).toHaveLength(1);
    ws.close();
  });

  test('never replaces a title its owner chose, by POST or by PATCH', async () => {
    const { server, api } = await start();
    const byPost = await session(server, api, { title: 'Mine' });
    byPost.ws.send({ type: 'chat.message', content: 'titled by post' });
    await byPost.ws.reply();
    const byPatch = await session(server, api);
    await api.request('PATCH', `/api/conversations/${byPatch.conversationId}`, {
      token: byPatch.me.access,
      body: { title: 'New conversation' }, // even the default's own words, when chosen
    });
    byPatch.ws.send({ type: 'chat.message', content: 'titled by patch' });
    await byPatch.ws.reply();
    await Bun.sleep(300);
    expect(titleRequests(server)).toHaveLength(0);
    expect((await byPost.conversation()).title).toBe('Mine');
    expect((await byPatch.conversation()).title).toBe('New conversation');
    byPost.ws.close();
    byPatch.ws.close();
  });

  test('renamed by its owner while the title is on its way: the owner’s title stays', async () => {
    const { server, api } = await start({ AI_TITLE_MODEL: '[stub:slow:150]' });
    const { me, conversationId, ws, conversation } = await session(server, api);
    ws.send({ type: 'chat.message', content: 'a question, then a rename' });
    await ws.reply();
    await until(() => titleRequests(server).length === 1, 'the title request');
    const renamed = await api.request('PATCH', `/api/conversations/${conversationId}`, {
      token: me.access,
      body: { title: 'Mine' },
    });
    expect(renamed.status).toBe(200);
    await until(() => titleRequests(server)[0]?.finished === true, 'the title answer', 10_000);
    await Bun.sleep(200);
    expect((await conversation()).title).toBe('Mine');
    const titles = ws.frames
      .filter((f) => f.type === 'conversation.updated')
      .map((f) => f.conversation.title);
    expect(titles).not.toContain(DEFAULT_TOKENS.join(''));
    ws.close();
  });

  test('a first reply that failed: the next complete one is titled', async () => {
    const { server, api } = await start();
    const { ws, conversation } = await session(server, api);
    ws.send({ type: 'chat.message', content: 'broken [stub:status:500]' });
    expect((await ws.next((f) => f.type === 'chat.error')).code).toBe('AI_ERROR');
    ws.send({ type: 'chat.message', content: 'and now a real question' });
    await ws.reply();
    const updated = await ws.next((f) => f.type === 'conversation.updated');
    expect(updated.conversation.title).toBe(DEFAULT_TOKENS.join(''));
    expect((await conversation()).title).toBe(DEFAULT_TOKENS.join(''));
    expect(titleRequests(server)).toHaveLength(1);
    ws.close();
  });

  test('AI_TITLE_MODEL writes it; a provider failure leaves the default title and sends no frame', async () => {
    const { server, api } = await start({ AI_TITLE_MODEL: '[stub:status:500]' });
    const { ws, conversation } = await session(server, api);
    ws.send({ type: 'chat.message', content: 'title fails' });
    const { final } = await ws.reply();
    expect(final.done).toBe(true);
    await until(() => titleRequests(server).length === 1, 'the title request');
    expect(titleRequests(server)[0]?.model).toBe('[stub:status:500]');
    await Bun.sleep(200);
    expect((await conversation()).title).toBe('New conversation');
    expect(ws.frames.filter((f) => f.type === 'conversation.updated' || f.type === 'chat.error')).toEqual([]);
    ws.close();
  });

  test('a slow title call delays no frame and no next message', async () => {
    const { server, api } = await start({ AI_TITLE_MODEL: '[stub:stall]', AI_TIMEOUT_SECONDS: '30' });
    const { ws, conversation } = await session(server, api);
    ws.send({ type: 'chat.message', content: 'first, then a stalled title' });
    await ws.reply();
    await until(() => titleRequests(server).length === 1, 'the title request');
    // The title is still on its way: the next message is admitted and answered at once.
    ws.send({ type: 'chat.message', content: 'second, right away' });
    const { deltas, final } = await ws.reply(3000);
    expect(final.done).toBe(true);
    expect(deltas.join('')).toBe(DEFAULT_TOKENS.join(''));
    expect(titleRequests(server)[0]?.finished).toBe(false);
    expect((await conversation()).title).toBe('New conversation');
    ws.close();
  });

  test('at most four titles are asked at once, each for a few tokens; the others wait their turn', async () => {
    const { server, api } = await start({ AI_TITLE_MODEL: '[stub:stall]', AI_TIMEOUT_SECONDS: '30' });
    const sessions = await Promise.all(Array.from({ length: 6 }, () => session(server, api)));
    for (const { ws } of sessions) ws.send({ type: 'chat.message', content: 'one of six' });
    for (const { ws } of sessions) expect((await ws.reply()).final.done).toBe(true);
    await until(() => titleRequests(server).length === 4, 'four title requests');
    await Bun.sleep(300);
    expect(titleRequests(server)).toHaveLength(4);
    expect((titleRequests(server)[0] as unknown as { max_tokens: number }).max_tokens).toBe(24);
    for (const { ws } of sessions) ws.close();
  });

  test('the title is the first line that is not blank: the rest of its answer is not read', async () => {
    const tokens = [
      '\n',
      ' \n',
      'Trip',
      ' to',
      ' Rome',
      '\n',
      'Here',
      ' is',
      ' why',
      ...Array(40).fill(' more'),
    ];
    // 20 ms apart: the answer's last token comes a second after the title's line ends.
    const stub = startOpenAIStub({ tokens, tokenDelayMs: 20 });
    const { server, api } = await start({}, { stub });
    const { ws, conversation } = await session(server, api);
    ws.send({ type: 'chat.message', content: 'Where should I go in spring?' });
    await ws.reply();
    expect((await ws.next((f) => f.type === 'conversation.updated')).conversation.title).toBe('Trip to Rome');
    expect((await conversation()).title).toBe('Trip to Rome');
    const [request] = titleRequests(server);
    // Stopped once the line ended: the request was given up before its last token.
    await until(() => request?.aborted === true, 'the title request given up');
    expect(request?.finished).toBe(false);
    expect(request?.sent).toBeLessThan(tokens.length);
    ws.close();
    stub.stop();
  });

  test('no title after a reply that did not complete', async () => {
    const { server, api } = await start();
    const { ws, conversation } = await session(server, api);
    ws.send({ type: 'chat.message', content: 'broken [stub:status:500]' });
    expect((await ws.next((f) => f.type === 'chat.error')).code).toBe('AI_ERROR');
    await Bun.sleep(200);
    expect(titleRequests(server)).toHaveLength(0);
    expect((await conversation()).title).toBe('New conversation');
    ws.close();
  });

  test('the offline model titles with the first words of the first message', async () => {
    const { server, api } = await start({}, { offline: true });
    const { ws, conversation } = await session(server, api);
    ws.send({
      type: 'chat.message',
      content: '  How do I bake <b>sourdough</b> bread at home without a starter?',
    });
    await ws.reply();
    const updated = await ws.next((f) => f.type === 'conversation.updated');
    expect(updated.conversation.title).toBe('How do I bake sourdough bread at home');
    expect((await conversation()).title).toBe('How do I bake sourdough bread at home');
    ws.close();
  });

  test('AI_TITLES=false: no title request at all', async () => {
    const { server, api } = await start({ AI_TITLES: 'false' });
    const { ws, conversation } = await session(server, api);
    ws.send({ type: 'chat.message', content: 'untitled' });
    await ws.reply();
    await Bun.sleep(200);
    expect(server.stub.requests).toHaveLength(1);
    expect((await conversation()).title).toBe('New conversation');
    ws.close();
  });
});

describe('tidyTitle', () => {
  test('one line, no quotes or "Title:", at most 60 characters cut at a word', () => {
    expect(tidyTitle('"Trip to Kyoto"')).toBe('Trip to Kyoto');
    expect(tidyTitle('Title: Weekend plans\nmore text')).toBe('Weekend plans');
    expect(tidyTitle('\n\n  «Résumé tips»  ')).toBe('Résumé tips');
    expect(tidyTitle('<b>Bold</b> idea')).toBe('Bold idea');
    const long = tidyTitle('word '.repeat(30));
    expect(long.length).toBeLessThanOrEqual(60);
    expect(long.endsWith('word')).toBe(true);
    expect([...tidyTitle('漢'.repeat(100))]).toHaveLength(60);
    expect(tidyTitle('   ')).toBe('');
  });
});
