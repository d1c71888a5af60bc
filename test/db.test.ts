import { describe, expect, test } from 'bun:test';
import { eq, sql } from 'drizzle-orm';
import { renderMigrationsModule } from '../scripts/embed-migrations';
import { rowsOf } from '../src/db/client';
import { migrate } from '../src/db/migrate';
import { users } from '../src/db/schema';
import { createTestDatabase, SERVICES } from './support/backends';

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

describe.if(Boolean(SERVICES.databaseUrl))('PostgreSQL client', () => {
  test('queries with parameters run as prepared statements: described once per connection, then one round trip', async () => {
    const database = await createTestDatabase();
    try {
      const { db } = database.handle;
      const id = crypto.randomUUID();
      // Sequential queries reuse one pooled connection, whose own statements are listed below.
      await db.select().from(users).where(eq(users.id, id));
      await db.select().from(users).where(eq(users.id, id));
      const rows = rowsOf<{ statement: string }>(
        await db.execute(sql`select statement from pg_prepared_statements`),
      );
      const matching = rows.filter((r) => r.statement.includes('from "users" where "users"."id" = $1'));
      expect(matching).toHaveLength(1);
    } finally {
      await database.drop();
    }
  });
});
