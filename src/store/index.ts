import type { Logger } from '../lib/logger';
import { MemoryStore } from './memory';
import { RedisStore } from './redis';
import type { Store } from './store';

export type { Store } from './store';
export { StoreUnavailableError } from './store';

export const openStore = async (
  redisUrl: string | undefined,
  keyPrefix: string,
  log: Logger,
): Promise<Store> => {
  if (!redisUrl) {
    log.warn(
      'REDIS_URL is not set: using the in-process store. Limits, locks and the token blacklist are not shared, so run a single instance only.',
    );
    return new MemoryStore();
  }
  const store = new RedisStore(redisUrl, keyPrefix);
  await store.connect();
  return store;
};
