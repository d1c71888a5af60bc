import { createChatModel } from '../../src/ai';
import { createApp, createServices, type Resources, type Services } from '../../src/app';
import { loadConfig } from '../../src/config';
import { type DatabaseHandle, openDatabase } from '../../src/db/client';
import { createLogger, type Logger } from '../../src/lib/logger';
import type { Store } from '../../src/store';
import { RedisStore } from '../../src/store/redis';
import {
  createTestDatabase,
  createTestStore,
  FAST_PASSWORD_HASHING,
  SERVICES,
  type TestDatabase,
  type TestStore,
  uniqueName,
} from './backends';
import { type OpenAIStub, startOpenAIStub } from './openai-stub';
import { startProxy } from './proxy';

export interface TestServer {
  url: string;
  wsUrl: string;
  resources: Resources;
  services: Services;
  app: ReturnType<typeof createApp>;
  stub: OpenAIStub;
  database: TestDatabase;
  testStore: TestStore;
  /** Everything the server logged, one JSON line each. */
  logs: string[];
  stop(): Promise<void>;
}

const captureLogs = (level: string): { log: Logger; lines: string[] } => {
  const lines: string[] = [];
  const log = createLogger(level, {
    write: (line: string) => {
      lines.push(line);
    },
  });
  return { log, lines };
};

/**
 * Starts the real app on a free loopback port, on its own database and store,
 * talking to its own OpenAI-compatible stub. `env` is applied on top of defaults,
 * exactly as environment variables would be.
 */
export const startServer = async (
  env: Record<string, string> = {},
  options: { offline?: boolean; stub?: OpenAIStub; database?: DatabaseHandle; store?: Store } = {},
): Promise<TestServer> => {
  const stub = options.stub ?? startOpenAIStub();
  await stub.ready;
  const config = loadConfig({
    NODE_ENV: 'test',
    OPENAI_API_KEY: options.offline ? undefined : 'sk-test-key',
    OPENAI_BASE_URL: stub.url,
    LOG_LEVEL: 'info',
    // Automatic titles are one more provider request after a first reply; the tests
    // that are about them turn them on (test/modules/chat/titles.test.ts).
    AI_TITLES: 'false',
    ...(env.NODE_ENV === 'production' ? {} : FAST_PASSWORD_HASHING),
    ...env,
  });
  const [database, testStore] = await Promise.all([createTestDatabase(), createTestStore()]);
  const { log, lines } = captureLogs(config.logLevel);
  const resources: Resources = {
    config,
    database: options.database ?? database.handle,
    store: options.store ?? testStore.store,
    model: createChatModel(config.ai, log),
    log,
  };
  const services = createServices(resources);
  await services.ready;
  const app = createApp(resources, services).listen({ port: 0, hostname: '127.0.0.1' });
  const port = app.server?.port;
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    resources,
    services,
    app,
    stub,
    database,
    testStore,
    logs: lines,
    stop: async () => {
      await services.shutdown(0);
      await app.stop(true);
      await Promise.allSettled([database.drop(), testStore.drop()]);
      if (!options.stub) stub.stop();
    },
  };
};

/**
 * The app on Redis reached through a TCP proxy that the test can cut and restore,
 * or hold and let go, under its own key prefix. Runs on PostgreSQL + Redis only.
 */
export const startServerBehindRedisProxy = async (name: string) => {
  const proxy = await startProxy(SERVICES.redisUrl as string);
  const prefix = `${uniqueName(name)}:`;
  const store = new RedisStore(proxy.url, prefix);
  await store.connect();
  const server = await startServer({}, { store });
  return {
    server,
    proxy,
    prefix,
    stop: async () => {
      await server.stop();
      await store.close();
      proxy.stop();
    },
  };
};

/**
 * The app on its own PostgreSQL database reached through a TCP proxy that the test
 * can cut and restore, or hold and let go. Runs on PostgreSQL only.
 */
export const startServerBehindPostgresProxy = async (env: Record<string, string> = {}) => {
  const database = await createTestDatabase();
  const proxy = await startProxy(database.url as string);
  const handle = await openDatabase({ kind: 'postgres', url: proxy.url });
  const server = await startServer(env, { database: handle });
  return {
    server,
    proxy,
    stop: async () => {
      await server.stop();
      await handle.close();
      proxy.stop();
      await database.drop();
    },
  };
};
