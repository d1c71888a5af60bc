import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { snippetOf } from '../../src/modules/conversations/search';
import { type Client, createClient } from '../support/client';
import { startServer, type TestServer } from '../support/server';
import { connectAuthenticated, type WsClient } from '../support/ws';

/** SPEC §13, search: titles and messages of any branch, every term, literally. */

let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer({ CHAT_RATE_LIMIT: '1000' });
  api = createClient(server.url);
});
afterAll(() => server.stop());

type Me = Awaited<ReturnType<Client['signUp']>>;
// biome-ignore lint/suspicious/noExplicitAny: checked field by field below
type Item = { conversation: any; message: any; snippet: string };

const search = async (me: Me, q: string, extra = '') => {
  const res = await api.request('GET', `/api/conversations/search?q=${encodeURIComponent(q)}${extra}`, {
    token: me.access,
  });
  expect(res.status).toBe(200);
  return res.body as { items: Item[]; count: number };
};

const conversation = async (me: Me, title?: string) =>
  (await api.request('POST', '/api/conversations/', { token: me.access, body: title ? { title } : {} })).body
    .id as string;

const say = async (ws: WsClient, content: string) => {
  ws.send({ type: 'chat.message', content });
  const { created, final } = await ws.reply();
  expect(final.done).toBe(true);
  return created?.message.id as string;
};

/** A conversation with these user messages, one after the other. */
const talk = async (me: Me, messages: string[], title?: string) => {
  const id = await conversation(me, title);
  const ws = await connectAuthenticated(server.wsUrl, id, me.access);
  const ids = [];
  for (const content of messages) ids.push(await say(ws, content));
  ws.close();
  return { id, ids };
};

describe('GET /api/conversations/search', () => {
  test('finds titles (message null) and messages (the newest match), newest updated first, one item per conversation', async () => {
    const me = await api.signUp();
    const titled = await conversation(me, 'Holiday plans for Kyoto');
    const chat = await talk(me, ['What to pack for kyoto in winter?', 'And kyoto temples worth seeing?']);
    const other = await talk(me, ['Nothing about that city here']);
    const found = await search(me, 'KYOTO');
    expect(found.count).toBe(2);
    expect(found.items.map((item) => item.conversation.id)).toEqual([chat.id, titled]);
    const [byMessage, byTitle] = found.items as [Item, Item];
    expect(byMessage.message.id).toBe(chat.ids[1]);
    expect(byMessage.message).toMatchObject({ role: 'user', content: 'And kyoto temples worth seeing?' });
    expect(byMessage.message.sibling_ids).toEqual([chat.ids[1]]);
    expect(byMessage.snippet).toBe('And kyoto temples worth seeing?');
    expect(byMessage.conversation).toMatchObject({ message_count: 4, title: 'New conversation' });
    expect(byTitle.message).toBeNull();
    expect(byTitle.snippet).toBe('Holiday plans for Kyoto');
    expect(found.items.some((item) => item.conversation.id === other.id)).toBe(false);
    // The assistant's answers are searched too.
    expect((await search(me, 'the stub')).count).toBe(2);
    // A term too short for the index (each conversation read newest first) finds the same.
    const short = await search(me, 'KY');
    expect(short.count).toBe(2);
    expect(short.items.map((item) => item.conversation.id)).toEqual([chat.id, titled]);
    expect(short.items[0]?.message.id).toBe(chat.ids[1]);
    expect(short.items[1]?.message).toBeNull();
  });

  test('every term must occur, in the title or in one message; terms match anywhere, case-insensitively, in any script', async () => {
    const me = await api.signUp();
    const both = await talk(me, ['Ünïcode and ÉCOLE side by side', '今天天气很好，我们去公园吧']);
    await talk(me, ['only ünïcode here', 'only école there']);
    expect((await search(me, 'ünïcode école')).items.map((item) => item.conversation.id)).toEqual([both.id]);
    expect((await search(me, '  école   ÜNÏCODE ')).count).toBe(1);
    expect((await search(me, 'ünïcode')).count).toBe(2);
    const cjk = await search(me, '天气');
    expect(cjk.items.map((item) => item.message.id)).toEqual([both.ids[1]]);
    expect((await search(me, '公园 今天')).count).toBe(1);
    expect((await search(me, 'code SIDE')).count).toBe(1);
    // Terms under three characters, which the index cannot serve, fold alike.
    expect((await search(me, 'ÜN')).count).toBe(2);
    expect((await search(me, 'éC ÜN')).items.map((item) => item.conversation.id)).toEqual([both.id]);
    expect((await search(me, 'nowhere-to-be-found')).items).toEqual([]);
  });

  test('%, _ and \\ are literal characters, not wildcards', async () => {
    const me = await api.signUp();
    const percent = await talk(me, ['a discount of 50% today']);
    const underscore = await talk(me, ['call my_function now']);
    const backslash = await talk(me, ['the path C:\\temp\\files']);
    await talk(me, ['plain words: 50 percent, myXfunction, C:/temp']);
    const ids = async (q: string) => (await search(me, q)).items.map((item) => item.conversation.id);
    expect(await ids('%')).toEqual([percent.id]);
    expect(await ids('50%')).toEqual([percent.id]);
    expect(await ids('my_f')).toEqual([underscore.id]);
    expect(await ids('_')).toEqual([underscore.id]);
    expect(await ids('C:\\temp')).toEqual([backslash.id]);
    expect(await ids('\\')).toEqual([backslash.id]);
  });

  test('messages of every branch are searched, not only the current one', async () => {
    const me = await api.signUp();
    const chat = await talk(me, ['the original wording']);
    const ws = await connectAuthenticated(server.wsUrl, chat.id, me.access);
    ws.send({ type: 'chat.edit', message_id: chat.ids[0], content: 'a rewritten question' });
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
    const found = await search(me, 'original wording');
    expect(found.items.map((item) => item.message.id)).toEqual([chat.ids[0]]);
    expect(found.items[0]?.message.sibling_ids).toHaveLength(2);
  });

  test("another user's conversations are never found", async () => {
    const me = await api.signUp();
    const stranger = await api.signUp();
    await talk(stranger, ['secret-word-of-the-stranger'], 'secret title of the stranger');
    expect(await search(me, 'secret')).toEqual({ items: [], count: 0 });
    expect(await search(me, 'se')).toEqual({ items: [], count: 0 });
    expect((await search(stranger, 'secret')).count).toBe(1);
    expect((await search(stranger, 'se')).count).toBe(1);
  });

  test('pages with limit and offset; count is the whole number of matches', async () => {
    const me = await api.signUp();
    const ids = [];
    for (let n = 0; n < 5; n++) ids.push(await conversation(me, `paged topic ${n}`));
    const first = await search(me, 'paged topic', '&limit=2');
    expect(first.count).toBe(5);
    expect(first.items.map((item) => item.conversation.id)).toEqual([ids[4], ids[3]]);
    const last = await search(me, 'paged topic', '&limit=2&offset=4');
    expect(last.items.map((item) => item.conversation.id)).toEqual([ids[0]]);
    expect(await search(me, 'paged topic', '&offset=10')).toEqual({ items: [], count: 5 });
    // The same with terms too short for the index.
    expect((await search(me, 'pa to', '&limit=2')).items.map((item) => item.conversation.id)).toEqual([
      ids[4],
      ids[3],
    ]);
    expect(await search(me, 'pa to', '&offset=10')).toEqual({ items: [], count: 5 });
  });

  test('a blank query, one over 200 characters, a missing q and bad paging are 422; no token is 401', async () => {
    const me = await api.signUp();
    const status = async (query: string, token: string | null = me.access) =>
      (await api.request('GET', `/api/conversations/search${query}`, { token: token ?? undefined })).status;
    expect(await status('?q=')).toBe(422);
    expect(await status(`?q=${encodeURIComponent('  \t ')}`)).toBe(422);
    expect(await status('')).toBe(422);
    expect(await status(`?q=${'x'.repeat(201)}`)).toBe(422);
    expect(await status(`?q=${encodeURIComponent('語'.repeat(201))}`)).toBe(422);
    expect(await status(`?q=${'x'.repeat(200)}`)).toBe(200);
    expect(await status(`?q=${encodeURIComponent('語'.repeat(200))}`)).toBe(200);
    expect(await status('?q=a&limit=0')).toBe(422);
    expect(await status('?q=a&limit=101')).toBe(422);
    expect(await status('?q=a&offset=-1')).toBe(422);
    expect(await status('?q=a', null)).toBe(401);
    expect(await status('/?q=a')).toBe(200);
  });
});

describe('snippets', () => {
  test('plain text around the first match, cut with …, whitespace folded, never half a character', () => {
    const long = `${'before '.repeat(30)}the NEEDLE is here ${'after '.repeat(40)}`;
    const snippet = snippetOf(long, ['needle']);
    expect(snippet.startsWith('…')).toBe(true);
    expect(snippet.endsWith('…')).toBe(true);
    expect(snippet).toContain('the NEEDLE is here');
    expect(Array.from(snippet).length).toBeLessThanOrEqual(162);
    expect(snippetOf('short\n\n text', ['text'])).toBe('short text');
    const emoji = `${'😀'.repeat(100)}target${'😀'.repeat(100)}`;
    const cut = snippetOf(emoji, ['TARGET']);
    expect(cut).toContain('target');
    expect(cut.isWellFormed()).toBe(true);
    expect(snippetOf('no match at all', ['zzz'])).toBe('no match at all');
    // Every character a term may hold is taken literally.
    for (const term of ['a-b', '(x)', '[y]', 'a.b', 'c*', '\\', '$^', '{1}', 'a|b', '/', '?'])
      expect(snippetOf(`before ${term} after`, [term])).toBe(`before ${term} after`);
  });
});
