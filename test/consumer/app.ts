/** A consumer of the typed client, type-checked by `bun run typecheck` (see tsconfig.json here). */
import { ChatSocket, createClient, type ServerFrame } from 'chatbot-api/client';

const api = createClient('http://localhost:8000');
const created = await api.api.conversations.post({ title: 'Typed' });
if (created.data) {
  const count: number = created.data.message_count;
  const chat = new ChatSocket({
    url: 'ws://localhost:8000',
    conversationId: created.data.id,
    token: () => api.accessToken(),
  });
  chat.on('chat.error', (frame) => console.log(frame.code, frame.retry_after, count));
}
const frame: ServerFrame = { type: 'ping' };

// The types are real, not `any`: a wrong body and an unknown field are errors.
// @ts-expect-error a title is a string
await api.api.conversations.post({ title: 5 });
// @ts-expect-error conversations have no such field
console.log(created.data?.colour, frame);
