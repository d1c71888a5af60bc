/** `bun run db:migrate`: applies pending migrations to the configured database. */
import { loadConfig } from '../src/config';
import { openDatabase } from '../src/db/client';
import { migrate } from '../src/db/migrate';
import { exitIfUnusable } from '../src/db/unusable';

const config = loadConfig();
const database = await openDatabase(config.database).catch(exitIfUnusable('Cannot migrate'));
try {
  const applied = await migrate(database.db).catch(exitIfUnusable('Cannot migrate'));
  console.log(applied ? `Applied ${applied} migration(s).` : 'Database is up to date.');
} finally {
  await database.close();
}
