import pino from 'pino';

export type Logger = pino.Logger;

/**
 * JSON lines on stdout. Secrets never reach a log call in the first place; the
 * redaction list is a second line of defence for fields that could carry them.
 */
export const createLogger = (level: string, destination?: pino.DestinationStream): Logger =>
  pino(
    {
      level,
      base: undefined,
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
