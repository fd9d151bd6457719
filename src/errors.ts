/**
 * Base of every error streamgate throws on purpose. Callers branch on `code`
 * (a stable `SG_ERR_*` string), never on the message.
 */
export class StreamgateError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
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
