import { describe, expect, test } from 'bun:test';
import { SERVICES } from '../support/backends';
import { type Client, createClient } from '../support/client';
import { rng } from '../support/fuzz';
import { startInstances } from '../support/instances';
import { connectAuthenticated, repliesSeen, type WsClient } from '../support/ws';

/**
 * Two instances, a dozen conversations with a socket on each instance, and a few
 * clients doing what people do at random, all at once: messages, stops (from a socket or
 * by REST), regenerates, edits, branch switches, reconnects, AI SDK requests read halfway.
 * Then SPEC §11's promises are checked on every socket and against what was stored.
 * Seeded: a failure names its seed, and `CHAOS_SEED` replays it.
 */
const SEED = Number(process.env.CHAOS_SEED ?? 20261205);
const ACTING_MS = 8000;

interface Conversation {
  id: string;
  access: string;
  sockets: WsClient[];
}

describe.if(Boolean(SERVICES.databaseUrl && SERVICES.redisUrl))(
  'two instances, many clients at random',
  () => {
    test(`every socket sees one reply at a time, and its text is what was stored (seed ${SEED})`, async () => {
      const pair = await startInstances({ CHAT_RATE_LIMIT: '10000', AI_TIMEOUT_SECONDS: '5' });
      const random = rng(SEED);
      const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)] as T;
      const apis = pair.instances.map((instance) => createClient(instance.url));
      const anyApi = () => pick(apis) as Client;
      const problems: string[] = [];
      const sockets: WsClient[] = [];
      const open = async (conversation: Conversation) => {
        const socket = await connectAuthenticated(
          pick(pair.instances).wsUrl,
          conversation.id,
          conversation.access,
        );
        conversation.sockets.push(socket);
        sockets.push(socket);
      };
      const request = async (method: string, path: string, conversation: Conversation, body?: unknown) => {
        const response = await anyApi().request(method, path, { token: conversation.access, body });
        if (response.status >= 500) problems.push(`${method} ${path}: ${response.status}`);
        return response;
      };
      const branch = async (conversation: Conversation) =>
        (await request('GET', `/api/conversations/${conversation.id}/messages?limit=100`, conversation)).body
          .items as { id: string; role: string; content: string; status: string; parent_id: string | null }[];
      const content = () =>
        pick(['hi', 'tell me more', 'a [stub:drip:10]', 'b [stub:drip:25]', 'c [stub:long:200]']);
      try {
        const conversations: Conversation[] = [];
        for (let i = 0; i < 6; i++) {
          const me = await anyApi().signUp();
          const second = await anyApi().request('POST', '/api/conversations/', {
            token: me.access,
            body: {},
          });
          for (const id of [me.conversationId, second.body.id as string])
            conversations.push({ id, access: me.access, sockets: [] });
        }
        for (const conversation of conversations) for (let i = 0; i < 2; i++) await open(conversation);

        const actions: [number, (conversation: Conversation) => Promise<unknown>][] = [
          [8, async (c) => pick(c.sockets).send({ type: 'chat.message', content: content() })],
          [3, async (c) => pick(c.sockets).send({ type: 'chat.regenerate' })],
          [2, async (c) => pick(c.sockets).send({ type: 'chat.stop' })],
          [2, (c) => request('POST', `/api/conversations/${c.id}/stop`, c)],
          [
            2,
            async (c) => {
              const users = (await branch(c)).filter((m) => m.role === 'user');
              if (users.length)
                pick(c.sockets).send({ type: 'chat.edit', message_id: pick(users).id, content: content() });
            },
          ],
          [
            2,
            async (c) => {
              const messages = await branch(c);
              if (!messages.length) return;
              const switched = await request('PATCH', `/api/conversations/${c.id}`, c, {
                current_message_id: pick(messages).id,
              });
              if (![200, 409].includes(switched.status)) problems.push(`switch: ${switched.status}`);
            },
          ],
          [
            2,
            async (c) => {
              // A socket goes (its reply goes on) and another comes, resuming what streams.
              // The new one first: with the actors running side by side, two of them closing
              // first could leave a conversation with no socket for a third to pick.
              await open(c);
              const socket = c.sockets.shift() as WsClient;
              socket.close();
            },
          ],
          [
            2,
            async (c) => {
              const response = await fetch(`${pick(pair.instances).url}/api/chat`, {
                method: 'POST',
                headers: { authorization: `Bearer ${c.access}`, 'content-type': 'application/json' },
                body: JSON.stringify({
                  id: c.id,
                  messages: [{ role: 'user', parts: [{ type: 'text', text: content() }] }],
                }),
              });
              if (response.status >= 500) problems.push(`POST /api/chat: ${response.status}`);
              const reader = response.body?.getReader();
              await reader?.read();
              await reader?.cancel();
            },
          ],
        ];
        const total = actions.reduce((sum, [weight]) => sum + weight, 0);
        const act = () => {
          let left = random() * total;
          for (const [weight, action] of actions) {
            left -= weight;
            if (left < 0) return action;
          }
          return (actions[0] as (typeof actions)[0])[1];
        };
        const until = Date.now() + ACTING_MS;
        await Promise.all(
          Array.from({ length: 6 }, async () => {
            while (Date.now() < until) {
              await act()(pick(conversations));
              await Bun.sleep(random() * 40);
            }
          }),
        );

        // Quiet again: every reply has ended, on every socket.
        const settled = async () =>
          sockets.every(
            (socket) => socket.socket.readyState !== WebSocket.OPEN || !repliesSeen(socket.frames).streaming,
          );
        for (const deadline = Date.now() + 15_000; !(await settled()) && Date.now() < deadline; )
          await Bun.sleep(100);

        for (const socket of sockets) {
          const { problems: order } = repliesSeen(socket.frames);
          problems.push(...order);
          for (const [i, frame] of socket.frames.entries())
            if (frame.type === 'chat.error' && frame.code === 'INTERNAL_ERROR')
              problems.push(
                `INTERNAL_ERROR after ${JSON.stringify(socket.frames.slice(Math.max(0, i - 4), i + 3).map((f) => [f.type, f.message_id ?? f.code ?? String(f.content).slice(0, 8)]))}`,
              );
        }
        // What each socket was shown of a stored answer is that answer: found by switching to it.
        const shown = new Map<string, { text: string; end: string }[]>();
        for (const socket of sockets)
          for (const reply of repliesSeen(socket.frames).replies)
            if (reply.stored) shown.set(reply.id, [...(shown.get(reply.id) ?? []), reply]);
        for (const conversation of conversations) {
          const messages = await branch(conversation);
          messages.forEach((m, i) => {
            if (m.parent_id !== (messages[i - 1]?.id ?? null))
              problems.push(`a broken branch in ${conversation.id}`);
          });
        }
        for (const [id, seen] of shown) {
          let stored: { content: string; status: string } | undefined;
          for (const conversation of conversations) {
            const switched = await request('PATCH', `/api/conversations/${conversation.id}`, conversation, {
              current_message_id: id,
            });
            if (switched.status !== 200) continue;
            stored = (await branch(conversation)).find((m) => m.id === id);
            break;
          }
          if (!stored) problems.push(`${id}: ended as stored, not found`);
          for (const { text, end } of seen) {
            if (stored && text !== stored.content)
              problems.push(`${id}: shown ${text.length} chars, stored ${stored.content.length}`);
            if (stored && end !== stored.status)
              problems.push(`${id}: ended ${end}, stored ${stored.status}`);
          }
        }
        // No lock left behind: each conversation answers one more message.
        for (const conversation of conversations) {
          const socket = conversation.sockets.at(-1) as WsClient;
          const from = socket.frames.length;
          socket.send({ type: 'chat.message', content: 'still there?' });
          const ended = () =>
            socket.frames
              .slice(from)
              .find((f) => (f.type === 'chat.stream' && f.done) || f.type === 'chat.error');
          for (const deadline = Date.now() + 5000; !ended() && Date.now() < deadline; ) await Bun.sleep(20);
          const end = ended();
          if (end?.type !== 'chat.stream')
            problems.push(`${conversation.id}: a last message got ${end?.code ?? 'nothing'}`);
        }
        expect(shown.size).toBeGreaterThan(20);
        expect(problems).toEqual([]);
      } finally {
        for (const socket of sockets) socket.close();
        await pair.stop();
      }
    }, 90_000);
  },
);
