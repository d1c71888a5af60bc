import { sql } from 'drizzle-orm';
import type { MigrationMeta } from 'drizzle-orm/migrator';
import { type Database, rowsOf } from './client';
import { migrations as embedded } from './migrations.gen';

// Any constant works; it only has to be the same for every instance.
const MIGRATION_LOCK_ID = 7_310_224_001;

/**
 * Applies the migrations generated into drizzle/ (embedded at build time, so the
 * compiled binary needs no folder beside it). Bookkeeping uses drizzle's own
 * `drizzle.__drizzle_migrations` table, so drizzle-kit sees the same history.
 * Several instances starting at once serialise on an advisory lock.
 * Returns how many migrations were applied.
 */
export const migrate = async (db: Database, migrations: MigrationMeta[] = embedded) =>
  db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`);
    await tx.execute(sql`create schema if not exists drizzle`);
    await tx.execute(sql`create table if not exists drizzle.__drizzle_migrations (
      id serial primary key, hash text not null, created_at bigint)`);
    const result = await tx.execute<{ created_at: string }>(
      sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`,
    );
    const last = Number(rowsOf<{ created_at: string }>(result)[0]?.created_at ?? 0);
    let applied = 0;
    for (const migration of migrations) {
      if (migration.folderMillis <= last) continue;
      for (const statement of migration.sql) if (statement.trim()) await tx.execute(sql.raw(statement));
      await tx.execute(
        sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`,
      );
      applied++;
    }
    return applied;
  });
