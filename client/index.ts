/**
 * The typed client (SPEC §14): `import { createClient, ChatSocket } from 'chatbot-api/client'`.
 * REST through Eden Treaty on the server's own app type; the WebSocket through
 * `ChatSocket`, its frames typed from the schemas the server validates with. Types
 * only come from the server: nothing of it is bundled into a browser.
 */
export { type Client, createClient, type Session, type Tokens } from './api';
export {
  ChatSocket,
  type ChatSocketOptions,
  type ChatSocketStatus,
  type ClientFrame,
  type LiveReply,
  type ServerFrame,
} from './socket';
