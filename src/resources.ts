import { createChatModel } from './ai';
import type { Resources } from './app';
import type { Config } from './config';
import { openDatabase } from './db/client';
import { migrate } from './db/migrate';
import type { Logger } from './lib/logger';
import { openStore } from './store';

/** Opens the database (migrated), the store and the model provider named by `config`. */
export const openResources = async (config: Config, log: Logger): Promise<Resources> => {
  const database = await openDatabase(config.database);
  const applied = await migrate(database.db);
  log.info(
    { database: database.kind, migrationsApplied: applied },
    database.kind === 'embedded'
      ? `database: embedded PGlite (${config.database.kind === 'pglite' ? config.database.dataDir : ''})`
      : 'database: PostgreSQL',
  );
  const store = await openStore(config.redisUrl, config.redisKeyPrefix, log);
  const model = createChatModel(config.ai, log);
  return { config, database, store, model, log };
};

export const closeResources = async ({ database, store }: Resources) => {
  await Promise.allSettled([store.close(), database.close()]);
};
