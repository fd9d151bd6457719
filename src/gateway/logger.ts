/**
 * The root pino logger. Secrets never reach a line: known secret-bearing paths are censored,
 * and config objects are never logged whole.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export const REDACT_PATHS = [
  'authToken',
  'password',
  'adminToken',
  'apiKeySecret',
  'token',
  '*.authToken',
  '*.password',
  '*.adminToken',
  '*.apiKeySecret',
  '*.token',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["x-twilio-signature"]',
  'customParameters.sgToken',
  '*.customParameters.sgToken',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'streamgate',
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}
