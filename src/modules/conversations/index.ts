import { Elysia, t } from 'elysia';
import { DOCUMENTED } from '../../lib/docs';
import { JSON_BODIES } from '../../lib/input';
import { authGuard } from '../auth/guard';
import { Detail } from '../auth/model';
import type { AuthService } from '../auth/service';
import {
  Conversation,
  ConversationPage,
  ConversationParams,
  CreateConversationBody,
  ExportQuery,
  FeedbackBody,
  Message,
  MessagePage,
  MessageParams,
  ModelList,
  Pagination,
  pagination,
  SearchPage,
  SearchQuery,
  searchTermsOf,
  UpdateConversationBody,
} from './model';
import type { ConversationService } from './service';

/** `/api/conversations/*` (SPEC §5, §12) and `/api/models`: the signed-in user's conversations only. */
export const conversationsModule = (auth: AuthService, conversations: ConversationService) =>
  new Elysia({ name: 'conversations-module', seed: conversations })
    .use(authGuard(auth))
    .get('/api/models', () => conversations.models(), {
      auth: true,
      response: { 200: ModelList },
      detail: { tags: ['conversations'], summary: 'The models a conversation may use' },
    })
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
        .get(
          '/search',
          ({ user, query }) => {
            const page = pagination(query);
            return conversations.search(user.id, searchTermsOf(query.q), page.limit, page.offset);
          },
          {
            auth: true,
            query: SearchQuery,
            response: { 200: SearchPage },
            detail: { summary: 'Find conversations by their title or any message, newest first' },
          },
        )
        .post('/', async ({ user, body, status }) => status(201, await conversations.create(user.id, body)), {
          auth: true,
          parse: JSON_BODIES,
          body: CreateConversationBody,
          response: { 201: Conversation },
          detail: { summary: 'Start a conversation, optionally with a model and a system prompt' },
        })
        .get('/:id', ({ user, params }) => conversations.get(user.id, params.id), {
          auth: true,
          params: ConversationParams,
          response: { 200: Conversation, 404: Detail },
          detail: { summary: 'One conversation' },
        })
        .patch('/:id', ({ user, params, body }) => conversations.update(user.id, params.id, body), {
          auth: true,
          params: ConversationParams,
          parse: JSON_BODIES,
          body: UpdateConversationBody,
          response: { 200: Conversation, 404: Detail, 409: Detail },
          detail: {
            summary: 'Rename a conversation, change its model or system prompt, or switch its branch',
          },
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
            detail: { summary: 'The current branch of a conversation, first message first' },
          },
        )
        .put(
          '/:id/messages/:message_id/feedback',
          ({ user, params, body }) => conversations.feedback(user.id, params.id, params.message_id, body),
          {
            auth: true,
            params: MessageParams,
            parse: JSON_BODIES,
            body: FeedbackBody,
            response: { 200: Message, 404: Detail },
            detail: { summary: 'Rate an answer (rating null removes the rating)' },
          },
        )
        .get(
          '/:id/export',
          async ({ user, params, query, set }) => {
            const file = await conversations.export(user.id, params.id, query.format);
            set.headers['content-type'] = file.type;
            set.headers['content-disposition'] =
              `attachment; filename="${file.filename}"; filename*=UTF-8''${encodeURIComponent(file.utf8Filename)}`;
            return file.body;
          },
          {
            auth: true,
            params: ConversationParams,
            query: ExportQuery,
            response: { 200: t.String(), 404: Detail },
            detail: {
              summary: 'The current branch as a Markdown or JSON download',
              [DOCUMENTED]: {
                200: {
                  description:
                    'The file: `# <title>` and a `## User` / `## Assistant` section per message, or `{conversation, messages}`',
                  headers: {
                    'Content-Disposition': {
                      description:
                        'attachment; filename="<slug>.md|.json"; filename*=UTF-8\'\'<title>.md|.json',
                      schema: { type: 'string' as const },
                    },
                  },
                  content: {
                    'text/markdown': { schema: { type: 'string' as const } },
                    'application/json': { schema: { type: 'object' as const } },
                  },
                },
              },
            },
          },
        ),
    );
