/**
 * The start-up baseline (bench/startup.ts): the least a server with the same
 * dependencies can do — a bare `Bun.serve` whose health check has opened the same
 * PostgreSQL and Redis connections (when DATABASE_URL / REDIS_URL are set).
 */
import Redis from 'ioredis';
import postgres from 'postgres';

const databaseUrl = process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : undefined;
const sql = databaseUrl ? postgres(databaseUrl, { max: 1 }) : undefined;
const redis = process.env.REDIS_URL ? new Redis(process.env.REDIS_URL) : undefined;
await Promise.all([sql ? sql`select 1` : undefined, redis?.ping()]);

Bun.serve({
  port: Number(process.env.PORT),
  hostname: '127.0.0.1',
  fetch: () => Response.json({ status: 'healthy' }),
});
