import type { Database } from '../../src/db/client';
import { createPasswords } from '../../src/modules/auth/password';
import { createUserRepository } from '../../src/modules/auth/repository';
import { createSuperuser } from '../../src/modules/auth/superuser';
import { type Client, STRONG_PASSWORD, uniqueUsername } from './client';

/** A staff user made as `bun run createsuperuser` makes one, logged in through `api`. */
export const signUpStaff = async (db: Database, api: Client) => {
  const username = uniqueUsername('staff');
  const passwords = createPasswords({ memoryKib: 1024, timeCost: 1 });
  const row = await createSuperuser(createUserRepository(db), passwords, {
    username,
    email: `${username}@example.com`,
    password: STRONG_PASSWORD,
  });
  return { ...(await api.login(username)), id: row.id };
};
