/**
 * What one heavy or hostile client costs the server:
 * - `pages`: a user with 20,000 conversations, one of them 10,000 messages long and one
 *   a tree of 2,000 messages in 50 branches (SPEC §12), reads pages at every depth. A
 *   page must cost what it returns, not its offset or the size of the tree: the deep
 *   pages are compared with the first one, and held to 50 ms p99.
 * - `bodies`: a stream of oversized request bodies (declared and chunked) is refused
 *   before it is read, so the server's memory stays where it was.
 */
import { sql } from 'drizzle-orm';
import { loadConfig } from '../src/config';
import { type Database, openDatabase } from '../src/db/client';
import { migrate } from '../src/db/migrate';
import { freePort } from './lib/ports';
import { percentile, rssKb, timeGets } from './lib/proc';
import { collectGarbage, spawnServer, spawnStub } from './lib/processes';
import type { Row } from './scenarios';

const CONVERSATIONS = 20_000;
const LONG_CONVERSATION = 10_000;
// SPEC §12's tree: 2,000 messages in 50 branches, the current one 1,020 long.
const TREE_BRANCHES = 50;
const TREE_BRANCH_LENGTH = 40;
const TREE_FORK_AT = 20;
const PASSWORD = 'Bench-password-123!';
const PAGE_TARGET_MS = 50;

/** The heavy user, written straight into the database (through the app's own migrations). */
export const seedHeavyUser = async (databaseUrl: string, username: string) => {
  const config = loadConfig({ DATABASE_URL: databaseUrl });
  const database = await openDatabase(config.database);
  try {
    await migrate(database.db);
    const hash = await Bun.password.hash(PASSWORD);
    const userId = Bun.randomUUIDv7();
    const longId = Bun.randomUUIDv7();
    const treeId = Bun.randomUUIDv7();
    const { db } = database;
    await db.execute(sql`insert into users (id, username, email, password)
      values (${userId}, ${username}, ${`${username}@example.com`}, ${hash})`);
    // Every conversation two messages long, updated one second apart, and the long one the oldest.
    await db.execute(sql`insert into conversations (id, user_id, title, created_at, updated_at)
      select case i when ${CONVERSATIONS} then ${longId}::uuid when ${CONVERSATIONS - 1} then ${treeId}::uuid
             else gen_random_uuid() end, ${userId},
             'conversation ' || i, now() - i * interval '1 second', now() - i * interval '1 second'
      from generate_series(1, ${CONVERSATIONS}) i`);
    // Two messages each, one branch: the answer follows the question.
    await db.execute(sql`insert into messages (id, conversation_id, parent_id, depth, jump_id, jump_depth,
                                               role, content, created_at)
      select md5(c.id::text || r.n)::uuid, c.id, case r.n when 2 then md5(c.id::text || 1)::uuid end, r.n - 1,
             md5(c.id::text || 1)::uuid, 0, r.role, 'a short message', c.created_at + r.n * interval '1 ms'
      from conversations c cross join (values (1, 'user'), (2, 'assistant')) r(n, role)
      where c.id not in (${longId}, ${treeId})`);
    await db.execute(sql`update conversations set current_message_id = md5(id::text || 2)::uuid
      where id not in (${longId}, ${treeId})`);
    await insertTree(db, longId, [{ from: -1, length: LONG_CONVERSATION }]);
    // The tree: branch b forks off branch b - 1 after its 20th message; the last is current.
    await insertTree(
      db,
      treeId,
      Array.from({ length: TREE_BRANCHES }, (_, b) => ({ from: b - 1, length: TREE_BRANCH_LENGTH })),
    );
    // What autovacuum does after this many inserts: statistics and the visibility map.
    await db.execute(sql`vacuum analyze`);
    return { longId, treeId };
  } finally {
    await database.close();
  }
};

/**
 * Branches of a conversation written straight into the database, with the parent
 * links, depths and jump pointers the app gives messages (conversations/messages.ts):
 * branch b starts after the 20th message of branch `from` (-1: a first message).
 * The last message written becomes the conversation's current one.
 */
const insertTree = async (
  db: Database,
  conversationId: string,
  branches: { from: number; length: number }[],
) => {
  type Node = { id: string; parent: Node | null; depth: number; jump: Node };
  const all: Node[] = [];
  const starts: Node[][] = [];
  for (const { from, length } of branches) {
    const branch: Node[] = [];
    let parent = from < 0 ? null : ((starts[from] as Node[])[TREE_FORK_AT - 1] as Node);
    for (let k = 0; k < length; k++) {
      const node = { id: Bun.randomUUIDv7(), parent, depth: parent ? parent.depth + 1 : 0 } as Node;
      const jump = parent?.jump;
      node.jump = !parent
        ? node
        : parent.depth - (jump as Node).depth === (jump as Node).depth - (jump as Node).jump.depth
          ? (jump as Node).jump
          : parent;
      branch.push(node);
      all.push(node);
      parent = node;
    }
    starts.push(branch);
  }
  const rows = all.map((n, i) => ({
    id: n.id,
    parent_id: n.parent?.id ?? null,
    depth: n.depth,
    jump_id: n.jump.id,
    jump_depth: n.jump.depth,
    role: n.depth % 2 ? 'assistant' : 'user',
    content: `message ${i}`,
    n: i,
  }));
  for (let from = 0; from < rows.length; from += 5_000)
    await db.execute(sql`insert into messages (id, conversation_id, parent_id, depth, jump_id, jump_depth, role,
                                               content, created_at)
      select r.id, ${conversationId}, r.parent_id, r.depth, r.jump_id, r.jump_depth, r.role, r.content,
             now() - interval '1 day' + r.n * interval '1 ms'
      from json_to_recordset(${JSON.stringify(rows.slice(from, from + 5_000))}::json)
        as r(id uuid, parent_id uuid, depth integer, jump_id uuid, jump_depth integer, role text, content text, n integer)`);
  await db.execute(
    sql`update conversations set current_message_id = ${(all.at(-1) as Node).id} where id = ${conversationId}`,
  );
  return all;
};

export const pages = async (): Promise<Row[]> => {
  const stub = await spawnStub({});
  const username = `heavy${Date.now().toString(36)}`;
  let seeded = { longId: '', treeId: '' };
  const server = await spawnServer(stub.url, freePort(), {}, 1, undefined, async (url) => {
    seeded = await seedHeavyUser(url, username);
  });
  const { longId, treeId } = seeded;
  try {
    const login = await fetch(`${server.url}/api/token/pair`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: PASSWORD }),
    });
    const { access } = (await login.json()) as { access: string };
    const list = (offset: number) => `${server.url}/api/conversations/?limit=100&offset=${offset}`;
    const messages = (offset: number, id = longId) =>
      `${server.url}/api/conversations/${id}/messages?limit=100&offset=${offset}`;
    // Warm-up: the server's JIT and the database's caches, on every page measured.
    const deep = [10_000, 19_900];
    const tree = [messages(0, treeId), messages(500, treeId), messages(920, treeId)];
    await timeGets([list(0), ...deep.map(list), messages(0), messages(9_900), ...tree], access, 5);
    const rounds = 40;
    const rows: Row[] = [];
    for (const [what, first, others] of [
      ['conversation list', list(0), deep.map(list)],
      ['message list (one branch of 10,000)', messages(0), [messages(5_000), messages(9_900)]],
      [
        'current branch (1,020) of a tree of 2,000 messages in 50 branches',
        messages(0, treeId),
        tree.slice(1),
      ],
    ] as const) {
      const baseline = percentile(await timeGets([first], access, rounds), 99);
      const ours = percentile(await timeGets([...others], access, rounds), 99);
      rows.push({
        scenario: 'pages',
        metric: `${what}: p99 ms, first page vs deep pages (${server.database})`,
        baseline,
        ours,
        ratio: ours / baseline,
        target: `< ${PAGE_TARGET_MS} ms`,
        met: ours < PAGE_TARGET_MS,
      });
    }
    return rows;
  } finally {
    await server.stop();
    await stub.stop();
  }
};

/** Sends `body` with a declared length, or chunked when `chunked`; resolves to the status. */
const post = async (url: string, size: number, chunked: boolean) => {
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  const body = chunked
    ? new ReadableStream<Uint8Array>({
        pull(controller) {
          size -= chunk.byteLength;
          if (size < 0) controller.close();
          else controller.enqueue(chunk);
        },
      })
    : new Uint8Array(size).fill(0x61);
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await res.arrayBuffer();
    return res.status;
  } catch {
    // The server may close the connection while the client is still sending.
    return 413;
  }
};

export const bodies = async (): Promise<Row[]> => {
  const stub = await spawnStub({});
  const server = await spawnServer(stub.url, freePort());
  try {
    const url = `${server.url}/api/auth/register`;
    await collectGarbage(server);
    const before = await rssKb(server.pid);
    let peak = before;
    const statuses = new Set<number>();
    const sample = setInterval(async () => {
      peak = Math.max(peak, await rssKb(server.pid));
    }, 50);
    // 60 bodies of 100 MB, three at a time: half declared, half chunked.
    for (let i = 0; i < 20; i++) {
      const sent = await Promise.all([0, 1, 2].map((j) => post(url, 100 * 1024 * 1024, (i + j) % 2 === 1)));
      for (const status of sent) statuses.add(status);
    }
    clearInterval(sample);
    await collectGarbage(server);
    const after = await rssKb(server.pid);
    if ([...statuses].some((s) => s !== 413)) throw new Error(`statuses ${[...statuses]}`);
    return [
      {
        scenario: 'bodies',
        metric: 'RSS MB: idle vs peak during 60 × 100 MB bodies (all 413)',
        baseline: before / 1024,
        ours: peak / 1024,
        ratio: peak / before,
        target: '≤ 1.5',
        met: peak / before <= 1.5,
      },
      {
        scenario: 'bodies',
        metric: 'RSS MB: idle vs after, collected',
        baseline: before / 1024,
        ours: after / 1024,
        ratio: after / before,
        target: '≤ 1.2',
        met: after / before <= 1.2,
      },
    ];
  } finally {
    await server.stop();
    await stub.stop();
  }
};
