import { notFound } from '../../lib/errors';
import { cleanContent } from '../../lib/sanitize';
import { type ConversationRepository, toConversationDto, toMessageDto } from './repository';

const DEFAULT_TITLE = 'New conversation';
const missing = () => notFound('Conversation not found');

/** Titles are plain text, cleaned like messages; nothing left means the default. */
const cleanTitle = (title: string | undefined) =>
  title === undefined ? undefined : cleanContent(title) || DEFAULT_TITLE;

/** Conversations belong to one user; anyone else gets 404, never a hint they exist. */
export const createConversationService = (repo: ConversationRepository) => {
  const get = async (userId: string, id: string) => {
    const row = await repo.find(userId, id);
    if (!row) throw missing();
    return toConversationDto(row);
  };

  return {
    get,

    list: async (userId: string, limit: number, offset: number) => {
      const page = await repo.list(userId, limit, offset);
      return { items: page.items.map(toConversationDto), count: page.count };
    },

    create: async (userId: string, title?: string) =>
      get(userId, await repo.create(userId, cleanTitle(title))),

    rename: async (userId: string, id: string, title?: string) => {
      if (!(await repo.update(userId, id, cleanTitle(title)))) throw missing();
      return get(userId, id);
    },

    remove: async (userId: string, id: string) => {
      if (!(await repo.remove(userId, id))) throw missing();
    },

    messages: async (userId: string, id: string, limit: number, offset: number) => {
      if (!(await repo.isOwner(userId, id))) throw missing();
      const page = await repo.messages(id, limit, offset);
      return { items: page.items.map(toMessageDto), count: page.count };
    },
  };
};

export type ConversationService = ReturnType<typeof createConversationService>;
