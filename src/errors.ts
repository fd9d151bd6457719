/**
 * Base of every error streamgate throws on purpose, and the one registry of their codes.
 * Callers branch on `code` (a stable `SG_ERR_*` string), never on the message. The classes
 * every layer shares live here; a layer's own failures (the REST client's, the rules file's,
 * the emulator's) subclass {@link StreamgateError} where they are thrown, with a code from
 * {@link ERROR_CODES}.
 */

/** Every error code, with what it means. A new error class adds its code here. */
export const ERROR_CODES = {
  /** Bad configuration; the message names the variable (ConfigError, RulesError). */
  SG_ERR_CONFIG: 'SG_ERR_CONFIG',
  /** A value from the wire or an API caller failed validation (InvalidInputError). */
  SG_ERR_INVALID_INPUT: 'SG_ERR_INVALID_INPUT',
  /** No Twilio REST credentials, so nothing can be asked of Twilio (TwilioNotConfiguredError). */
  SG_ERR_TWILIO_NOT_CONFIGURED: 'SG_ERR_TWILIO_NOT_CONFIGURED',
  /** Twilio answered with a non-2xx status (twilio/errors.ts TwilioApiError). */
  SG_ERR_TWILIO_API: 'SG_ERR_TWILIO_API',
  /** Twilio answered 2xx with a body that is not the documented resource (TwilioResponseError). */
  SG_ERR_TWILIO_RESPONSE: 'SG_ERR_TWILIO_RESPONSE',
  /** No usable HTTP answer from Twilio (TwilioTransportError). */
  SG_ERR_TWILIO_TRANSPORT: 'SG_ERR_TWILIO_TRANSPORT',
  /** The emulator: a named call, conference or stream does not exist. */
  SG_ERR_SIM_NOT_FOUND: 'SG_ERR_SIM_NOT_FOUND',
  /** The emulator: a wait timed out. */
  SG_ERR_SIM_TIMEOUT: 'SG_ERR_SIM_TIMEOUT',
  /** The emulator's REST API refused a request. */
  SG_ERR_SIM_REST: 'SG_ERR_SIM_REST',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class StreamgateError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StreamgateError';
    this.code = code;
  }
}

/** Bad configuration: the message names the variable. */
export class ConfigError extends StreamgateError {
  constructor(message: string) {
    super('SG_ERR_CONFIG', message);
    this.name = 'ConfigError';
  }
}

/** A value from the wire (a SID, a path part) failed validation. */
export class InvalidInputError extends StreamgateError {
  constructor(message: string) {
    super('SG_ERR_INVALID_INPUT', message);
    this.name = 'InvalidInputError';
  }
}

/** No Twilio REST credentials are configured, so nothing can be asked of Twilio. */
export class TwilioNotConfiguredError extends StreamgateError {
  constructor() {
    super(
      'SG_ERR_TWILIO_NOT_CONFIGURED',
      'Twilio REST credentials are not configured: set TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET)',
    );
    this.name = 'TwilioNotConfiguredError';
  }
}
