import { describe, expect, test } from 'bun:test';
import { renderMigrationsModule } from '../scripts/embed-migrations';
import { migrate } from '../src/db/migrate';
import { createTestDatabase } from './support/backends';

describe('migrations', () => {
  test('the embedded module matches drizzle/ (run `bun run db:generate` after changing the schema)', async () => {
    const embedded = await Bun.file(new URL('../src/db/migrations.gen.ts', import.meta.url)).text();
    expect(embedded).toBe(renderMigrationsModule(new URL('../drizzle', import.meta.url).pathname));
  });

  test('apply once: a second run applies nothing and concurrent runs do not collide', async () => {
    const database = await createTestDatabase();
    try {
      expect(await migrate(database.handle.db)).toBe(0);
      const results = await Promise.all([migrate(database.handle.db), migrate(database.handle.db)]);
      expect(results).toEqual([0, 0]);
    } finally {
      await database.drop();
    }
  });
});
