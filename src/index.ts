import './jit';
import { ConfigError, loadConfig } from './config';
import { pgliteAssets } from './db/pglite-assets';
import { exitIfUnusable } from './db/unusable';

const readConfig = () => {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    process.exit(1);
  }
};

/** `chatbot-api healthcheck`: the container probe (the runtime image has no curl). */
const healthcheck = async () => {
  const { port } = readConfig();
  const response = await fetch(`http://127.0.0.1:${port}/api/health/`, {
    signal: AbortSignal.timeout(4000),
  }).catch(() => undefined);
  process.exit(response?.ok ? 0 : 1);
};

const serve = async () => {
  const config = readConfig();
  // Compiling PGlite's WebAssembly takes a few hundred milliseconds, on background
  // threads: begun before the rest of the server is loaded, the two overlap (a
  // failure is met again, and reported, where the database opens).
  if (config.database.kind === 'pglite') pgliteAssets({ withInitdb: false }).catch(() => {});
  const [
    { createApp, createServices },
    { describeError },
    { createLogger },
    { closeResources, openResources },
  ] = await Promise.all([
    import('./app'),
    import('./lib/failures'),
    import('./lib/logger'),
    import('./resources'),
  ]);
  const log = createLogger(config.logLevel);
  const resources = await openResources(config, log).catch(exitIfUnusable('Cannot start'));
  const services = createServices(resources);
  await services.ready;
  // Several processes may share the port (SO_REUSEPORT, Elysia's default) only with
  // Redis: on the in-process store each would hold its own locks, rate windows and
  // replies, and the kernel would spread a user's sockets between them.
  const shared = config.redisUrl !== undefined;
  let app: ReturnType<typeof createApp>;
  try {
    app = createApp(resources, services).listen({
      port: config.port,
      hostname: config.host,
      reusePort: shared,
    });
  } catch (error) {
    if (shared || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    console.error(
      `Cannot start: port ${config.port} is in use. Without REDIS_URL the server runs as a single instance; ` +
        'set DATABASE_URL (PostgreSQL) and REDIS_URL to run several on one port.',
    );
    await closeResources(resources);
    process.exit(1);
  }
  log.info(
    { port: app.server?.port, host: config.host, env: config.nodeEnv, ai: resources.model.mode },
    'listening',
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
    // Stop accepting at once; the promise only settles when every connection has
    // ended, so it is not awaited: open sockets stay up while replies finish.
    void app.server?.stop(false);
    await services.shutdown(config.shutdownGraceSeconds * 1000);
    await app.server?.stop(true);
    await closeResources(resources);
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // A promise nobody handled is a bug to fix, not a reason to drop every socket:
  // without a handler Bun ends the process. Logged without its message, which could
  // carry user content.
  process.on('unhandledRejection', (reason) => {
    log.error({ error: describeError(reason) }, 'unhandled rejection');
  });
};

if (process.argv[2] === 'healthcheck') await healthcheck();
else await serve();
