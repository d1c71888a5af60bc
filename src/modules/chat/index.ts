import type { ServerWebSocket } from 'bun';
import { Elysia } from 'elysia';
import { ChatConnection } from './connection';
import { encode, MESSAGES, parseClientFrame } from './protocol';
import type { ConnectionRegistry } from './registry';
import type { ChatService } from './service';

interface SocketData {
  connection: ChatConnection;
}
type ChatSocket = ServerWebSocket<SocketData>;

/**
 * `/ws/chat/{conversation_id}/` (SPEC §6). The upgrade happens on an ordinary Elysia
 * route, so every global hook (Host, Origin, security headers) runs first; Elysia's
 * Bun adapter then dispatches socket events to `ws.data.open/message/drain/close`.
 * Those handlers are shared by all sockets through the prototype of `ws.data`, which
 * holds nothing but the connection's own state: Elysia's `.ws()` copies the whole
 * request context and builds a dozen closures per socket and a wrapper per frame
 * (≈35 KB per idle socket against Bun's ≈3 KB, see bench/RESULTS.md).
 */
export const chatModule = (chat: ChatService, registry: ConnectionRegistry, authTimeoutMs: number) => {
  const handlers = {
    open: (ws: ChatSocket) => {
      const { connection } = ws.data;
      connection.attach(ws);
      registry.add(connection);
      chat.open(connection, authTimeoutMs);
    },
    message: (ws: ChatSocket, message: string | Buffer) => {
      const { connection } = ws.data;
      chat.frame(connection, parseClientFrame(message)).catch(() => {
        connection.send(encode.error('INTERNAL_ERROR', MESSAGES.INTERNAL_ERROR));
      });
    },
    drain: (ws: ChatSocket) => ws.data.connection.onDrain(),
    close: (ws: ChatSocket) => {
      ws.data.connection.onClosed();
      registry.remove(ws.data.connection);
    },
  };

  return new Elysia({ name: 'chat-module', seed: chat }).get(
    '/ws/chat/:conversationId',
    ({ request, server, params, status }) => {
      const data: SocketData = Object.assign(Object.create(handlers), {
        connection: new ChatConnection(params.conversationId),
      });
      if (server?.upgrade(request, { data })) return;
      return status(426, { detail: 'Expected a WebSocket upgrade' });
    },
    { detail: { hide: true } },
  );
};
