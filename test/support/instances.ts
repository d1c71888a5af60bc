import { createChatModel } from '../../src/ai';
import { createApp, createServices, type Resources } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/lib/logger';
import { createTestDatabase, createTestStore, FAST_PASSWORD_HASHING, SERVICES, uniqueName } from './backends';
import { type OpenAIStub, startOpenAIStub } from './openai-stub';
import { spawnServerProcess } from './process';

export interface Instance {
  url: string;
  wsUrl: string;
}

/**
 * Two server instances sharing one database and one store. On PostgreSQL + Redis
 * they are two real `bun src/index.ts` processes on different ports; on the
 * embedded defaults (nothing to share between processes) they are two app
 * instances in this process, each with its own services, sharing one PGlite and
 * one in-process store.
 */
export const startInstances = async (env: Record<string, string> = {}) => {
  const stub: OpenAIStub = startOpenAIStub();
  await stub.ready;
  const database = await createTestDatabase();
  const baseEnv = {
    OPENAI_API_KEY: 'sk-test',
    OPENAI_BASE_URL: stub.url,
    LOG_LEVEL: 'warn',
    AI_TITLES: 'false',
    ...FAST_PASSWORD_HASHING,
    ...env,
  };

  if (database.url && SERVICES.redisUrl) {
    const prefix = `${uniqueName('pair')}:`;
    const children = await Promise.all(
      [0, 1].map(() =>
        spawnServerProcess({
          ...baseEnv,
          DATABASE_URL: database.url as string,
          REDIS_URL: SERVICES.redisUrl as string,
          REDIS_KEY_PREFIX: prefix,
        }),
      ),
    );
    return {
      instances: children.map(({ url, wsUrl }) => ({ url, wsUrl })) as [Instance, Instance],
      stub,
      /** The processes (PostgreSQL + Redis only), for tests that kill one; and the Redis prefix. */
      processes: children.map(({ child }) => child),
      prefix,
      database,
      stop: async () => {
        for (const { child } of children) child.kill('SIGTERM');
        await Promise.all(children.map(({ child }) => child.exited));
        await database.drop();
        stub.stop();
      },
    };
  }

  const testStore = await createTestStore();
  const config = loadConfig({ NODE_ENV: 'test', ...baseEnv });
  const log = createLogger('silent');
  const servers = [0, 1].map(() => {
    const resources: Resources = {
      config,
      database: database.handle,
      store: testStore.store,
      model: createChatModel(config.ai, log),
      log,
    };
    const services = createServices(resources);
    const app = createApp(resources, services).listen({ port: 0, hostname: '127.0.0.1' });
    return { app, services, port: app.server?.port };
  });
  await Promise.all(servers.map(({ services }) => services.ready));
  return {
    instances: servers.map(({ port }) => ({
      url: `http://127.0.0.1:${port}`,
      wsUrl: `ws://127.0.0.1:${port}`,
    })) as [Instance, Instance],
    stub,
    database,
    stop: async () => {
      for (const { app, services } of servers) {
        await services.shutdown(0);
        await app.stop(true);
      }
      await database.drop();
      await testStore.drop();
      stub.stop();
    },
  };
};
