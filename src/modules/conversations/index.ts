import { Elysia, t } from 'elysia';
import { authGuard } from '../auth/guard';
import { Detail } from '../auth/model';
import type { AuthService } from '../auth/service';
import {
  Conversation,
  ConversationPage,
  ConversationParams,
  CreateConversationBody,
  MessagePage,
  Pagination,
  pagination,
  UpdateConversationBody,
} from './model';
import type { ConversationService } from './service';

/** `/api/conversations/*` (SPEC §5): the signed-in user's conversations only. */
export const conversationsModule = (auth: AuthService, conversations: ConversationService) =>
  new Elysia({ name: 'conversations-module', seed: conversations })
    .use(authGuard(auth))
    .group('/api/conversations', { detail: { tags: ['conversations'] } }, (app) =>
      app
        .get(
          '/',
          ({ user, query }) => {
            const page = pagination(query);
            return conversations.list(user.id, page.limit, page.offset);
          },
          {
            auth: true,
            query: Pagination,
            response: { 200: ConversationPage },
            detail: { summary: 'List conversations, most recently updated first' },
          },
        )
        .post(
          '/',
          async ({ user, body, status }) => status(201, await conversations.create(user.id, body?.title)),
          {
            auth: true,
            body: CreateConversationBody,
            response: { 201: Conversation },
            detail: { summary: 'Start a conversation' },
          },
        )
        .get('/:id', ({ user, params }) => conversations.get(user.id, params.id), {
          auth: true,
          params: ConversationParams,
          response: { 200: Conversation, 404: Detail },
          detail: { summary: 'One conversation' },
        })
        .patch('/:id', ({ user, params, body }) => conversations.rename(user.id, params.id, body.title), {
          auth: true,
          params: ConversationParams,
          body: UpdateConversationBody,
          response: { 200: Conversation, 404: Detail },
          detail: { summary: 'Rename a conversation' },
        })
        .delete(
          '/:id',
          async ({ user, params, status }) => {
            await conversations.remove(user.id, params.id);
            return status(204, undefined);
          },
          {
            auth: true,
            params: ConversationParams,
            response: { 204: t.Void(), 404: Detail },
            detail: { summary: 'Delete a conversation and its messages' },
          },
        )
        .get(
          '/:id/messages',
          ({ user, params, query }) => {
            const page = pagination(query);
            return conversations.messages(user.id, params.id, page.limit, page.offset);
          },
          {
            auth: true,
            params: ConversationParams,
            query: Pagination,
            response: { 200: MessagePage, 404: Detail },
            detail: { summary: 'Messages of a conversation, oldest first' },
          },
        ),
    );
