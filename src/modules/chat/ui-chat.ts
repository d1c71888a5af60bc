import { HttpError, notFound } from '../../lib/errors';
import { isOutage } from '../../lib/failures';
import type { ConversationRepository } from '../conversations/repository';
import { type ClientFrame, encode, isUuid, MESSAGES } from './protocol';
import type { Rooms } from './rooms';
import type { ChatService } from './service';
import { lastUserText, type UiChatBody, UiStreamSocket } from './ui-stream';

/**
 * The AI SDK endpoint (SPEC §14): each request is the chat frame it stands for, read
 * over HTTP by one more socket of the conversation (ui-stream.ts), so the chat
 * service and the rooms do all the work they do for a WebSocket.
 */
export const createUiChat = (
  repo: Pick<ConversationRepository, 'isOwner'>,
  chat: ChatService,
  rooms: Pick<Rooms, 'join'>,
) => {
  const owned = async (userId: string, conversationId: string) => {
    if (!isUuid(conversationId) || !(await repo.isOwner(userId, conversationId)))
      throw notFound('Conversation not found.');
  };

  return {
    /** `POST /api/chat`: the last user message (or a regenerate), answered as a UI message stream. */
    send: async (userId: string, body: UiChatBody): Promise<Response> => {
      await owned(userId, body.id);
      let frame: ClientFrame;
      if (body.trigger === 'regenerate-message')
        frame = body.messageId
          ? { type: 'chat.regenerate', message_id: body.messageId }
          : { type: 'chat.regenerate' };
      else {
        const content = lastUserText(body.messages);
        if (content === undefined)
          throw new HttpError(422, [
            { loc: ['body', 'messages'], msg: 'No user message to answer.', type: 'missing' },
          ]);
        frame = { type: 'chat.message', content };
      }
      const reader = new UiStreamSocket(body.id, userId, chat.closed);
      chat.frame(reader.connection, frame).catch((error: unknown) => {
        if (isOutage(error)) reader.connection.outage();
        reader.connection.send(encode.error('INTERNAL_ERROR', MESSAGES.INTERNAL_ERROR));
      });
      return reader.response;
    },

    /** `GET /api/chat/{id}/stream`: the reply streaming now, from its start, or 204. */
    resume: async (userId: string, conversationId: string): Promise<Response> => {
      await owned(userId, conversationId);
      const reader = new UiStreamSocket(conversationId, userId, chat.closed);
      if (!(await rooms.join(reader.connection))) reader.nothing();
      return reader.response;
    },
  };
};

export type UiChat = ReturnType<typeof createUiChat>;
