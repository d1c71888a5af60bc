import { createApp, createServices } from './app';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './lib/logger';
import { closeResources, openResources } from './resources';

const start = async () => {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`Configuration error: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  const resources = await openResources(config, log);
  const services = createServices(resources);
  const app = createApp(resources, services).listen({ port: config.port, hostname: config.host });
  log.info(
    { port: app.server?.port, host: config.host, env: config.nodeEnv, ai: resources.model.mode },
    'listening',
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
    // Stop accepting; sockets already open stay up until the registry closes them.
    await app.server?.stop(false);
    await services.shutdown(config.shutdownGraceSeconds * 1000);
    await closeResources(resources);
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
};

await start();
