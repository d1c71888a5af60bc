import { Elysia } from 'elysia';
import { ChatConnection } from './connection';
import { encode, MESSAGES, parseClientFrame } from './protocol';
import type { ConnectionRegistry } from './registry';
import type { ChatService } from './service';

/**
 * `/ws/chat/{conversation_id}/` (SPEC §6) on Elysia's WebSocket handler. Frames are
 * taken raw and validated by the protocol module so every failure becomes our own
 * `chat.error` frame; nothing thrown here can reach the client or the process.
 */
export const chatModule = (chat: ChatService, registry: ConnectionRegistry, authTimeoutMs: number) =>
  new Elysia({ name: 'chat-module', seed: chat })
    // Created at upgrade, so it lives in ws.data; the socket is attached on open.
    .resolve(({ params }) => ({
      connection: new ChatConnection((params as { conversationId: string }).conversationId),
    }))
    .ws('/ws/chat/:conversationId', {
      detail: { hide: true },
      open: (ws) => {
        const connection = ws.data.connection;
        connection.attach(ws.raw);
        registry.add(connection);
        chat.open(connection, authTimeoutMs);
      },
      message: (ws, message) => {
        const connection = ws.data.connection;
        // Nothing is returned: Elysia would send a handler's return value as a frame.
        chat.frame(connection, parseClientFrame(message)).catch(() => {
          connection.send(encode.error('INTERNAL_ERROR', MESSAGES.INTERNAL_ERROR));
        });
      },
      drain: (ws) => {
        ws.data.connection.onDrain();
      },
      close: (ws) => {
        const connection = ws.data.connection;
        connection.onClosed();
        registry.remove(connection);
      },
    });
