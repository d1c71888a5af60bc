import { Elysia } from 'elysia';
import pkg from '../package.json';
import type { ChatModel } from './ai';
import type { Config } from './config';
import type { DatabaseHandle } from './db/client';
import { corsPolicy } from './lib/cors';
import { docs } from './lib/docs';
import { errorHandler } from './lib/error-handler';
import { canonicalIds, decodableUrl, requestBody, storableText } from './lib/input';
import type { Logger } from './lib/logger';
import { allowedMethods, type Route } from './lib/methods';
import { createMetrics } from './lib/metrics';
import { requestLog } from './lib/request-log';
import { security } from './lib/security';
import { createTracing } from './lib/tracing';
import { adminModule } from './modules/admin';
import { createAdminService } from './modules/admin/service';
import { authModule, LOGIN_ROUTE } from './modules/auth';
import { createPasswords } from './modules/auth/password';
import { createUserRepository } from './modules/auth/repository';
import { createAuthService, invalidCredentials } from './modules/auth/service';
import { createTokenService } from './modules/auth/tokens';
import { chatModule } from './modules/chat';
import { createBus } from './modules/chat/bus';
import { createChatGate } from './modules/chat/gate';
import { createQuestions } from './modules/chat/questions';
import { createConnectionRegistry } from './modules/chat/registry';
import { createReplyRunner } from './modules/chat/reply';
import { createRooms } from './modules/chat/rooms';
import { createChatService } from './modules/chat/service';
import { createReplyTelemetry } from './modules/chat/telemetry';
import { createTitler } from './modules/chat/titles';
import { createUiChat } from './modules/chat/ui-chat';
import { conversationsModule } from './modules/conversations';
import { createConversationRepository } from './modules/conversations/repository';
import { createConversationService } from './modules/conversations/service';
import { healthModule } from './modules/health';
import { metricsModule } from './modules/health/metrics';
import { usageModule } from './modules/usage';
import { createUsageRepository } from './modules/usage/repository';
import { createUsageService } from './modules/usage/service';
import { webModule } from './modules/web';
import type { Store } from './store';

/** What the app runs on; index.ts opens these, tests open their own. */
export interface Resources {
  config: Config;
  database: DatabaseHandle;
  store: Store;
  model: ChatModel;
  log: Logger;
}

export const createServices = ({ config, database, store, model, log }: Resources) => {
  const users = createUserRepository(database.db);
  const repo = createConversationRepository(database.db);
  const tokens = createTokenService(config.jwt, store);
  const usage = createUsageService(
    createUsageRepository(database.db),
    { tokens: config.quota.dailyTokens, messages: config.quota.dailyMessages },
    log,
  );
  const registry = createConnectionRegistry(config.ws.heartbeatSeconds * 1000);
  const metrics = createMetrics();
  metrics.countSockets(() => registry.size);
  const tracing = createTracing({ ...config.tracing, version: pkg.version });
  const telemetry = createReplyTelemetry(metrics, tracing.tracer);
  const aiTimeoutMs = config.ai.timeoutSeconds * 1000;
  // Renewed every third of it while the reply streams; what is left after an
  // instance dies is how long its conversation stays locked.
  const lockTtlMs = Math.max(10_000, 2 * aiTimeoutMs);
  const gate = createChatGate(
    store,
    log,
    {
      rateLimit: config.chat.rateLimit,
      rateWindowMs: config.chat.rateWindowSeconds * 1000,
      lockTtlMs,
    },
    usage,
  );
  const rooms = createRooms(createBus(store, log), log, {
    aiTimeoutMs,
    currentTtlMs: lockTtlMs,
    stopOnDisconnect: config.chat.stopOnDisconnect,
    closeUser: registry.closeUser,
    forgetLimits: usage.forget,
  });
  const auth = createAuthService(
    users,
    tokens,
    store,
    config.login,
    createPasswords(config.passwordHashing),
    rooms,
  );
  const titles = createTitler(
    repo,
    model,
    { enabled: config.ai.titles, model: config.ai.titleModel, timeoutMs: aiTimeoutMs },
    log,
    rooms.updated,
  );
  const chat = createChatService({
    auth,
    repo,
    gate,
    replies: createReplyRunner(repo, model, {
      maxContextTokens: config.ai.maxContextTokens,
      maxAnswerChars: config.ai.maxAnswerChars,
      aiTimeoutMs,
      observer: telemetry.observer,
    }),
    rooms,
    questions: createQuestions(repo, {
      maxMessageLength: config.chat.maxMessageLength,
      defaults: { model: config.ai.model, systemPrompt: config.ai.systemPrompt },
      models: config.ai.models,
    }),
    titles,
    usage,
    telemetry,
    log,
    track: registry.track,
  });
  const conversations = createConversationService(
    repo,
    { models: config.ai.models, defaultModel: config.ai.model },
    { whileIdle: gate.whileIdle, changed: gate.changed, updated: rooms.updated, removed: rooms.removed },
  );
  const admin = createAdminService(users, usage, {
    deactivated: rooms.shutOut,
    limitsChanged: rooms.limitsChanged,
  });
  return {
    auth,
    admin,
    conversations,
    chat,
    uiChat: createUiChat(repo, chat, rooms),
    usage,
    rooms,
    registry,
    metrics,
    tracer: tracing.tracer,
    /** Resolves once this instance hears other instances' replies. */
    ready: rooms.ready,
    /** Lets replies finish (up to the grace period), closes sockets, stops timers. */
    shutdown: async (graceMs: number) => {
      await registry.shutdown(graceMs, () => {
        for (const reply of rooms.replies()) reply.stop('shutdown');
      });
      gate.stop();
      await titles.close();
      await rooms.close();
      await tracing.shutdown();
    },
  };
};

export type Services = ReturnType<typeof createServices>;

/** Builds the whole server: REST under /api, docs, WebSocket under /ws. */
export const createApp = (resources: Resources, services: Services = createServices(resources)) => {
  const { config, log } = resources;
  const app = new Elysia({
    websocket: { maxPayloadLength: config.ws.maxPayloadBytes, idleTimeout: 0 },
  })
    .use(requestLog(log, services.metrics, services.tracer))
    .use(
      errorHandler(
        log,
        config.debug,
        allowedMethods((): readonly Route[] => app.routes),
      ),
    )
    .use(security(config))
    .use(decodableUrl())
    .use(canonicalIds())
    .use(requestBody(config.http.maxBodyBytes))
    .use(storableText({ [LOGIN_ROUTE]: invalidCredentials }))
    .use(corsPolicy(config.corsOrigins))
    .use(docs(pkg.version))
    .use(healthModule(resources.database, resources.store, resources.model.mode))
    .use(metricsModule(services.metrics, { token: config.metrics.token, production: config.production }))
    .use(authModule(services.auth, config.trustProxy))
    .use(conversationsModule(services.auth, services.conversations))
    .use(usageModule(services.auth, services.usage))
    .use(adminModule(services.auth, services.admin))
    .use(
      chatModule(
        services.auth,
        services.chat,
        services.registry,
        config.ws.authTimeoutSeconds * 1000,
        services.uiChat,
      ),
    )
    .use(webModule());
  return app;
};
export type App = ReturnType<typeof createApp>;
