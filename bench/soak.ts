/**
 * `bun run bench:soak [users] [seconds]`: N users chat concurrently for a fixed time
 * against a real server process, then the database is checked: every accepted user
 * message has exactly one stored answer, and its content equals what the client
 * received. Bounded in time; exits non-zero on any mismatch.
 */
import postgres from 'postgres';
import { openChat, prepareSessions } from './lib/load';
import { spawnServer, spawnStub } from './lib/processes';

const users = Number(process.argv[2] ?? 20);
const seconds = Number(process.argv[3] ?? 20);

const stub = await spawnStub({ STUB_TOKENS: '30', STUB_DELAY_MS: '2' });
const server = await spawnServer(stub.url, 34000 + Math.floor(Math.random() * 1000), {
  CHAT_RATE_LIMIT: '100000',
});
const tokens = new Map<string, string>();
const received = new Map<string, { question: string; answer: string; messageId: string }[]>();
let accepted = 0;
let refused = 0;
try {
  const sessions = await prepareSessions(server.url, users, 1);
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    sessions.map(async (session) => {
      const conversationId = session.conversationIds[0] as string;
      tokens.set(conversationId, session.token);
      const chat = await openChat(server.url.replace('http', 'ws'), conversationId, session.token);
      const log: { question: string; answer: string; messageId: string }[] = [];
      received.set(conversationId, log);
      for (let i = 0; performance.now() < deadline; i++) {
        const question = `soak question ${i} [stub:echo]`;
        try {
          const reply = await chat.ask(question);
          log.push({ question, answer: reply.text, messageId: reply.messageId ?? '' });
          accepted++;
        } catch {
          refused++;
        }
      }
      chat.close();
    }),
  );
} finally {
  await Bun.sleep(500);
}

// Read back what the server stored: straight from PostgreSQL, or (PGlite belongs to
// the server process) through the messages endpoint.
const sql = server.databaseUrl.startsWith('postgres')
  ? postgres(server.databaseUrl, { max: 1, onnotice: () => {} })
  : null;
const storedVia = async (conversationId: string, token: string) => {
  if (sql)
    return sql`select role, content, status, id from messages where conversation_id = ${conversationId} order by created_at, id`;
  const items: unknown[] = [];
  for (let offset = 0; ; offset += 100) {
    const page = (await fetch(
      `${server.url}/api/conversations/${conversationId}/messages?limit=100&offset=${offset}`,
      {
        headers: { authorization: `Bearer ${token}` },
      },
    ).then((r) => r.json())) as { items: unknown[]; count: number };
    items.push(...page.items);
    if (items.length >= page.count) return items;
  }
};
let mismatches = 0;
for (const [conversationId, log] of received) {
  const rows = await storedVia(conversationId, tokens.get(conversationId) as string);
  const stored = rows as unknown as { role: string; content: string; status: string; id: string }[];
  const users = stored.filter((m) => m.role === 'user');
  if (users.length !== log.length) mismatches++;
  for (const [i, exchange] of log.entries()) {
    const userIndex = stored.indexOf(users[i] as (typeof stored)[number]);
    const answer = stored[userIndex + 1];
    const ok =
      users[i]?.content === exchange.question &&
      answer?.role === 'assistant' &&
      answer.status === 'complete' &&
      answer.content === exchange.answer &&
      answer.id === exchange.messageId;
    if (!ok) mismatches++;
  }
  if (stored.filter((m) => m.role === 'assistant').length !== log.length) mismatches++;
}
await sql?.end();
await server.stop();
await stub.stop();
console.log(
  JSON.stringify({
    users,
    seconds,
    backend: server.database,
    accepted,
    refused,
    conversations: received.size,
    mismatches,
  }),
);
process.exit(mismatches === 0 && refused === 0 ? 0 : 1);
