/**
 * Errors the Sim's programmatic API throws (besides InvalidInputError for bad options).
 */
import { StreamgateError } from '../errors.js';

/** A call, conference or stream the caller named does not exist. */
export class SimNotFoundError extends StreamgateError {
  constructor(what: string) {
    super('SG_ERR_SIM_NOT_FOUND', `no ${what}`);
    this.name = 'SimNotFoundError';
  }
}

/** A wait timed out; the message says what was awaited. */
export class SimTimeoutError extends StreamgateError {
  constructor(what: string, ms: number) {
    super('SG_ERR_SIM_TIMEOUT', `timed out after ${ms} ms waiting for ${what}`);
    this.name = 'SimTimeoutError';
  }
}
