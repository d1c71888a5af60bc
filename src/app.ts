import { cors } from '@elysiajs/cors';
import { Elysia } from 'elysia';
import pkg from '../package.json';
import type { ChatModel } from './ai';
import type { Config } from './config';
import type { DatabaseHandle } from './db/client';
import { docs } from './lib/docs';
import { errorHandler } from './lib/error-handler';
import type { Logger } from './lib/logger';
import { security } from './lib/security';
import { authModule } from './modules/auth';
import { createUserRepository } from './modules/auth/repository';
import { createAuthService } from './modules/auth/service';
import { createTokenService } from './modules/auth/tokens';
import { conversationsModule } from './modules/conversations';
import { createConversationRepository } from './modules/conversations/repository';
import { createConversationService } from './modules/conversations/service';
import { healthModule } from './modules/health';
import type { Store } from './store';

/** What the app runs on; index.ts opens these, tests open their own. */
export interface Resources {
  config: Config;
  database: DatabaseHandle;
  store: Store;
  model: ChatModel;
  log: Logger;
}

export const createServices = ({ config, database, store }: Resources) => {
  const users = createUserRepository(database.db);
  const conversationRepository = createConversationRepository(database.db);
  const tokens = createTokenService(config.jwt, store);
  return {
    tokens,
    conversationRepository,
    auth: createAuthService(users, tokens, store, config.login),
    conversations: createConversationService(conversationRepository),
  };
};

/** Builds the whole server: REST under /api, docs, WebSocket under /ws. */
export const createApp = (resources: Resources) => {
  const { config, log } = resources;
  const services = createServices(resources);
  return new Elysia({
    websocket: { maxPayloadLength: config.ws.maxPayloadBytes, idleTimeout: 0 },
  })
    .use(errorHandler(log, config.debug))
    .use(security(config))
    .use(
      cors({
        origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
        credentials: true,
        methods: ['GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
        allowedHeaders: ['Content-Type', 'Authorization'],
        maxAge: 600,
      }),
    )
    .use(docs(pkg.version))
    .use(healthModule(resources.database, resources.store, resources.model.mode))
    .use(authModule(services.auth, config.trustProxy))
    .use(conversationsModule(services.auth, services.conversations));
};

export type App = ReturnType<typeof createApp>;
