/**
 * `search`: SPEC §13's search over 100,000 messages, in 1,000 conversations of 100
 * messages written from a vocabulary of 5,000 made-up words plus marker words of
 * known frequency (rare, common, CJK, two-letter). 100 users: a heavy one owns half
 * of everything (500 conversations, 50,000 messages), the other 99 share the rest. Both
 * the heavy user and a typical one search; latency p50 / p99 over every query, on
 * PostgreSQL (when DATABASE_URL is set) and on embedded PGlite. Baseline: the first
 * page of the conversation list, the cheapest authenticated read, in the same run.
 * Target: p99 < 100 ms on PostgreSQL.
 */
import { sql } from 'drizzle-orm';
import { loadConfig } from '../src/config';
import { openDatabase, rowsOf } from '../src/db/client';
import { migrate } from '../src/db/migrate';
import { freePort } from './lib/ports';
import { percentile, timeGets } from './lib/proc';
import { spawnServer, spawnStub } from './lib/processes';
import type { Row } from './scenarios';

const USERS = 100;
const CONVERSATIONS = 1_000;
const HEAVY_CONVERSATIONS = 500;
const PER_CONVERSATION = 100;
const PASSWORD = 'Bench-password-123!';
const TARGET_MS = 100;
const ROUNDS = 20;

/** Words and how often each marker occurs (share of messages). */
const MARKERS = { kyoto: 0.001, budget: 0.1, 天气: 0.01, 'reservation-42%': 0.0005 } as const;

/** A deterministic generator (mulberry32), so every run searches the same text. */
const random = (() => {
  let seed = 42;
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
})();

const VOCABULARY = Array.from({ length: 5_000 }, () =>
  Array.from({ length: 4 + Math.floor(random() * 6) }, () =>
    String.fromCharCode(97 + Math.floor(random() * 26)),
  ).join(''),
);

const sentence = () => {
  const words = Array.from(
    { length: 8 + Math.floor(random() * 16) },
    () => VOCABULARY[Math.floor(random() * VOCABULARY.length)],
  );
  for (const [marker, share] of Object.entries(MARKERS))
    if (random() < share) words.splice(Math.floor(random() * words.length), 0, marker);
  return words.join(' ');
};

/** Writes the users and their messages; returns the heavy user's and a typical user's names. */
const seed = async (databaseUrl: string, prefix: string) => {
  const database = await openDatabase(loadConfig({ DATABASE_URL: databaseUrl }).database);
  try {
    await migrate(database.db);
    const { db } = database;
    const hash = await Bun.password.hash(PASSWORD);
    const users = Array.from({ length: USERS }, (_, n) => ({
      id: Bun.randomUUIDv7(),
      username: `${prefix}${n}`,
    }));
    await db.execute(sql`insert into users (id, username, email, password)
      select u.id, u.username, u.username || '@example.com', ${hash}
      from json_to_recordset(${JSON.stringify(users)}::json) as u(id uuid, username text)`);
    // Conversation i belongs to the heavy user (users[0]) for i < 500, else to one of the others.
    const owners = Array.from({ length: CONVERSATIONS }, (_, i) =>
      i < HEAVY_CONVERSATIONS ? users[0]?.id : users[1 + (i % (USERS - 1))]?.id,
    );
    await db.execute(sql`insert into conversations (id, user_id, title, created_at, updated_at)
      select gen_random_uuid(), o.owner, 'trip ' || o.n || case when o.n % 100 = 0 then ' to Kyoto' else '' end,
             now() - o.n * interval '1 minute', now() - o.n * interval '1 minute'
      from json_to_recordset(${JSON.stringify(owners.map((owner, n) => ({ owner, n })))}::json)
        as o(owner uuid, n integer)`);
    const conversationIds = rowsOf<{ id: string }>(
      await db.execute(sql`select id from conversations order by created_at`),
    ).map((r) => r.id);
    for (let from = 0; from < conversationIds.length; from += 50) {
      const rows = conversationIds.slice(from, from + 50).flatMap((conversationId) =>
        Array.from({ length: PER_CONVERSATION }, (_, n) => ({
          conversation_id: conversationId,
          n,
          role: n % 2 ? 'assistant' : 'user',
          content: sentence(),
        })),
      );
      await db.execute(sql`insert into messages (id, conversation_id, parent_id, depth, jump_id, jump_depth, role,
                                                 content, created_at)
        select md5(r.conversation_id::text || r.n)::uuid, r.conversation_id,
               case when r.n > 0 then md5(r.conversation_id::text || (r.n - 1))::uuid end, r.n,
               md5(r.conversation_id::text || 0)::uuid, 0, r.role, r.content,
               now() - interval '1 day' + r.n * interval '1 ms'
        from json_to_recordset(${JSON.stringify(rows)}::json)
          as r(conversation_id uuid, n integer, role text, content text)`);
    }
    await db.execute(sql`vacuum analyze`);
  } finally {
    await database.close();
  }
};

const QUERIES = [
  'kyoto',
  'budget',
  '天气',
  'reservation-42%',
  'budget kyoto',
  'trip kyoto',
  'nowhere-word',
  'ab',
];

/** Runs `run` with the server on the embedded defaults whatever the environment says. */
const embedded = async <T>(run: () => Promise<T>) => {
  const saved = { DATABASE_URL: process.env.DATABASE_URL, REDIS_URL: process.env.REDIS_URL };
  delete process.env.DATABASE_URL;
  delete process.env.REDIS_URL;
  try {
    return await run();
  } finally {
    Object.assign(process.env, saved);
  }
};

const login = async (url: string, username: string) => {
  const res = await fetch(`${url}/api/token/pair`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  return ((await res.json()) as { access: string }).access;
};

const measure = async (): Promise<Row[]> => {
  const stub = await spawnStub({});
  const prefix = `searcher${Date.now().toString(36)}`;
  const server = await spawnServer(stub.url, freePort(), {}, 1, undefined, (url) => seed(url, prefix));
  try {
    const list = [`${server.url}/api/conversations/?limit=20`];
    const searches = QUERIES.map((q) => `${server.url}/api/conversations/search?q=${encodeURIComponent(q)}`);
    const onPostgres = server.database.startsWith('PostgreSQL');
    const rows: Row[] = [];
    for (const [who, username] of [
      ['a user with 50,000 of them', `${prefix}0`],
      ['a user with 500 of them', `${prefix}1`],
    ] as const) {
      const access = await login(server.url, username);
      await timeGets([...list, ...searches], access, 3); // warm-up
      const baseline = await timeGets(list, access, ROUNDS * 2);
      const ours = await timeGets(searches, access, ROUNDS);
      for (const p of [50, 99]) {
        const value = percentile(ours, p);
        const base = percentile(baseline, p);
        const checked = p === 99 && onPostgres;
        rows.push({
          scenario: 'search',
          metric: `search, 100,000 messages, ${who} (${QUERIES.length} queries): p${p} ms vs the conversation list (${server.database})`,
          baseline: base,
          ours: value,
          ratio: value / base,
          ...(checked ? { target: `< ${TARGET_MS} ms`, met: value < TARGET_MS } : {}),
        });
      }
    }
    return rows;
  } finally {
    await server.stop();
    await stub.stop();
  }
};

export const search = async (): Promise<Row[]> => {
  const rows = process.env.DATABASE_URL?.startsWith('postgres') ? await measure() : [];
  return [...rows, ...(await embedded(measure))];
};
