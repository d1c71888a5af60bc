import { AsyncLocalStorage } from 'node:async_hooks';
import pino from 'pino';

export type Logger = pino.Logger;

/**
 * The id of the HTTP request being handled (lib/request-log.ts enters it), so every
 * line logged while handling it carries the same `request_id` (SPEC §15), however deep
 * the code that logs. WebSocket frames run outside any request: none there.
 */
export const requestScope = new AsyncLocalStorage<string>();

const NONE = {};
const inRequest = () => {
  const id = requestScope.getStore();
  return id === undefined ? NONE : { request_id: id };
};

/**
 * JSON lines on stdout. Secrets never reach a log call in the first place; the
 * redaction list is a second line of defence for fields that could carry them.
 */
export const createLogger = (level: string, destination?: pino.DestinationStream): Logger =>
  pino(
    {
      level,
      base: undefined,
      mixin: inRequest,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [
          'password',
          'token',
          'access',
          'refresh',
          'content',
          'authorization',
          '*.password',
          '*.token',
          '*.authorization',
          '*.content',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: true }),
  );
