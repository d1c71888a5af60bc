import { createChatModel } from './ai';
import type { Resources } from './app';
import type { Config } from './config';
import { type DatabaseHandle, openDatabase } from './db/client';
import { migrate } from './db/migrate';
import { describeError, isDatabaseDown } from './lib/failures';
import type { Logger } from './lib/logger';
import { openStore } from './store';

const RETRY_MS = 1000;

/**
 * Migrates, waiting up to `waitSeconds` for a PostgreSQL that does not answer yet
 * (a container started before its database): a warning now and then meanwhile, and
 * the error once the wait is over. Anything else fails at once.
 */
const migrateWhenUp = async (database: DatabaseHandle, log: Logger, waitSeconds: number) => {
  const deadline = Date.now() + waitSeconds * 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await migrate(database.db);
    } catch (error) {
      if (!isDatabaseDown(error) || Date.now() >= deadline) {
        await database.close().catch(() => {});
        throw error;
      }
      if (attempt % 5 === 0)
        log.warn(
          { error: describeError(error), waitSeconds },
          'database not answering at start-up: waiting for it (DATABASE_WAIT_SECONDS)',
        );
      await Bun.sleep(RETRY_MS);
    }
  }
};

/** Opens the database (migrated), the store and the model provider named by `config`. */
export const openResources = async (config: Config, log: Logger): Promise<Resources> => {
  const database = await openDatabase(config.database);
  const applied = await migrateWhenUp(database, log, config.databaseWaitSeconds);
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
