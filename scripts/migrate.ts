/** `bun run db:migrate`: applies pending migrations to the configured database. */
import { loadConfig } from '../src/config';
import { openDatabase } from '../src/db/client';
import { exitIfInUse } from '../src/db/data-dir-lock';
import { migrate } from '../src/db/migrate';

const config = loadConfig();
const database = await openDatabase(config.database).catch(exitIfInUse('Cannot migrate'));
try {
  const applied = await migrate(database.db);
  console.log(applied ? `Applied ${applied} migration(s).` : 'Database is up to date.');
} finally {
  await database.close();
}
