import { describe, expect, test } from 'bun:test';
import { eq } from 'drizzle-orm';
import { openPglite } from '../src/db/client';
import { migrations } from '../src/db/migrations.gen';
import { users } from '../src/db/schema';
import { createTestDatabase, uniqueName } from './support/backends';
import { STRONG_PASSWORD } from './support/client';

const root = new URL('..', import.meta.url).pathname;

const run = (script: string, args: string[], env: Record<string, string>) =>
  Bun.spawnSync(['bun', script, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdin: 'ignore',
  });

describe('bun run createsuperuser', () => {
  test('creates an active staff superuser from flags, and refuses a duplicate or weak password', async () => {
    const database = await createTestDatabase();
    const dir = `/tmp/${uniqueName('pglite')}`;
    // The script runs in its own process: it needs a database URL it can open too.
    const env = database.url ? { DATABASE_URL: database.url } : { DATABASE_URL: `file://${dir}` };
    try {
      const username = uniqueName('admin');
      const ok = run(
        'scripts/createsuperuser.ts',
        ['--username', username, '--email', `${username}@example.com`, '--password', STRONG_PASSWORD],
        env,
      );
      expect(ok.stdout.toString()).toContain('created');
      expect(ok.exitCode).toBe(0);

      const again = run(
        'scripts/createsuperuser.ts',
        ['--username', username, '--email', 'other@example.com', '--password', STRONG_PASSWORD],
        env,
      );
      expect(again.exitCode).toBe(1);
      expect(again.stderr.toString()).toContain('username already exists');

      const weak = run(
        'scripts/createsuperuser.ts',
        ['--username', uniqueName('b'), '--email', 'b@example.com', '--password', 'weak'],
        env,
      );
      expect(weak.exitCode).toBe(1);
      expect(weak.stderr.toString()).toContain('at least 12');

      const target = database.url ? database.handle : (await openPglite(dir)).handle;
      const [row] = await target.db.select().from(users).where(eq(users.username, username));
      if (!database.url) await target.close();
      expect(row).toMatchObject({ isStaff: true, isSuperuser: true, isActive: true });
      expect(row?.password.startsWith('$argon2id$')).toBe(true);
    } finally {
      await database.drop();
      await Bun.$`rm -rf ${dir}`.quiet();
    }
  }, 60_000);
});

describe('bun run db:migrate', () => {
  test('applies migrations to a fresh database, then reports it up to date', () => {
    const dir = `/tmp/${uniqueName('pglite')}`;
    try {
      const first = run('scripts/migrate.ts', [], { DATABASE_URL: `file://${dir}` });
      expect(first.stdout.toString()).toContain(`Applied ${migrations.length} migration`);
      const second = run('scripts/migrate.ts', [], { DATABASE_URL: `file://${dir}` });
      expect(second.stdout.toString()).toContain('up to date');
    } finally {
      Bun.spawnSync(['rm', '-rf', dir]);
    }
  }, 60_000);
});
