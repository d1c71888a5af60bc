import type { ServerWebSocket } from 'bun';
import { Elysia, t } from 'elysia';
import { DOCUMENTED } from '../../lib/docs';
import { JSON_BODIES } from '../../lib/input';
import { upgraded } from '../../lib/request-log';
import { authGuard } from '../auth/guard';
import { Detail } from '../auth/model';
import type { AuthService } from '../auth/service';
import { ConversationParams } from '../conversations/model';
import { encode, MESSAGES, parseClientFrame } from './protocol';
import type { ConnectionRegistry } from './registry';
import type { ChatService } from './service';
import { ChatConnection } from './socket';
import type { UiChat } from './ui-chat';
import { UI_CHAT_ANSWERS, UI_RESUME_ANSWERS, UiChatBody } from './ui-stream';

/**
 * `/ws/chat/{conversation_id}/` (SPEC §6). The upgrade happens on an ordinary Elysia
 * route, so every global hook (Host, Origin, security headers) runs first; Elysia's
 * Bun adapter then dispatches socket events to `ws.data.open/message/drain/close`.
 * `ws.data` is the connection itself, its handlers shared by every socket through
 * the class prototype: Elysia's `.ws()` copies the whole request context and builds
 * a dozen closures per socket and a wrapper per frame (see bench/history.md).
 */
export const chatModule = (
  auth: AuthService,
  chat: ChatService,
  registry: ConnectionRegistry,
  authTimeoutMs: number,
  uiChat: UiChat,
) => {
  /** A connection's state plus the four handlers Elysia's adapter calls on `ws.data`. */
  class SocketConnection extends ChatConnection {
    open(ws: ServerWebSocket<SocketConnection>) {
      this.attach(ws);
      registry.add(this);
      chat.open(this, authTimeoutMs);
    }
    message(_ws: ServerWebSocket<SocketConnection>, message: string | Buffer) {
      chat.frame(this, parseClientFrame(message)).catch(() => {
        this.send(encode.error('INTERNAL_ERROR', MESSAGES.INTERNAL_ERROR));
      });
    }
    drain() {
      this.onDrain();
    }
    close() {
      this.onClosed();
      registry.remove(this);
      chat.closed(this);
    }
  }

  return new Elysia({ name: 'chat-module', seed: chat })
    .use(authGuard(auth))
    .get(
      '/ws/chat/:conversationId',
      ({ request, server, params, set, status }) => {
        // The 101 carries the request id (SPEC §15), and only it. Any header given to the
        // upgrade costs each idle socket ~0.17 KB for good in Bun (bench/history.md).
        const headers = { 'x-request-id': String(set.headers['x-request-id']) };
        if (server?.upgrade(request, { headers, data: new SocketConnection(params.conversationId) })) {
          upgraded(request);
          return;
        }
        return status(426, { detail: 'Expected a WebSocket upgrade' });
      },
      { detail: { hide: true } },
    )
    .post(
      '/api/conversations/:id/stop',
      async ({ user, params }) => ({ stopped: await chat.stop(user.id, params.id) }),
      {
        auth: true,
        params: ConversationParams,
        response: { 200: t.Object({ stopped: t.Boolean() }), 404: Detail },
        detail: {
          tags: ['conversations'],
          summary: 'Stop the reply streaming in a conversation, on whichever instance it runs',
        },
      },
    )
    .post('/api/chat', ({ user, body }) => uiChat.send(user.id, body), {
      auth: true,
      parse: JSON_BODIES,
      body: UiChatBody,
      detail: {
        tags: ['chat'],
        summary: 'Send a message, answered in the Vercel AI SDK UI message stream protocol (useChat)',
        [DOCUMENTED]: UI_CHAT_ANSWERS,
      },
    })
    .get('/api/chat/:id/stream', ({ user, params }) => uiChat.resume(user.id, params.id), {
      auth: true,
      params: t.Object({ id: t.String() }),
      detail: {
        tags: ['chat'],
        summary: 'Resume the reply streaming in a conversation (AI SDK protocol), or 204',
        [DOCUMENTED]: UI_RESUME_ANSWERS,
      },
    });
};
