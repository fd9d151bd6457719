/**
 * Typed failures of the Twilio REST client (docs/twilio-protocol.md §7). Callers branch on `code`
 * and on the fields below, never on the message text.
 *
 * - {@link TwilioApiError}: Twilio answered with a non-2xx status (error body per §7.2).
 * - {@link TwilioResponseError}: Twilio answered 2xx but the body is not the documented resource.
 * - {@link TwilioTransportError}: no usable HTTP answer (timeout, refused, reset, DNS).
 */
import { StreamgateError } from '../errors.js';

/** The REST operations streamgate performs; also the `operation` label of the request metrics. */
export type TwilioOperation = 'CreateStream' | 'UpdateStream' | 'UpdateConference' | 'FetchConference';

/** Fields Twilio puts in an error body: legacy `{code,message,more_info,status}`, or RFC 9457. */
export interface TwilioErrorBody {
  /** Twilio error code, e.g. 20404; null when the body had none (a proxy's HTML page). */
  twilioCode: number | null;
  /** Twilio's human-readable message, or a description of the unreadable body. */
  message: string;
  /** `more_info` (legacy) or `type` (RFC 9457): a docs URL; null when absent. */
  moreInfo: string | null;
}

/** Twilio answered with a non-2xx HTTP status. */
export class TwilioApiError extends StreamgateError {
  /** HTTP status of the (last) answer. */
  readonly status: number;
  /** Twilio error code from the body (20404, 20003, 21220, …); null for a non-JSON body. */
  readonly twilioCode: number | null;
  /** `more_info` URL from the body; null when absent. */
  readonly moreInfo: string | null;
  readonly operation: TwilioOperation;
  /** Twilio's own `message`, unchanged (the Error's `message` adds operation and status). */
  readonly twilioMessage: string;
  /** How many HTTP attempts were made, retries included. */
  readonly attempts: number;

  constructor(operation: TwilioOperation, status: number, body: TwilioErrorBody, attempts: number) {
    const code = body.twilioCode === null ? '' : ` (Twilio ${body.twilioCode})`;
    super('SG_ERR_TWILIO_API', `${operation} failed: HTTP ${status}${code}: ${body.message}`);
    this.name = 'TwilioApiError';
    this.status = status;
    this.twilioCode = body.twilioCode;
    this.moreInfo = body.moreInfo;
    this.operation = operation;
    this.twilioMessage = body.message;
    this.attempts = attempts;
  }
}

/**
 * Twilio answered 2xx with a body that is not the documented resource (not JSON, a SID that
 * fails its pattern, an unknown status). The request may well have taken effect, so it is
 * never retried.
 */
export class TwilioResponseError extends StreamgateError {
  readonly status: number;
  readonly operation: TwilioOperation;
  readonly attempts: number;

  constructor(operation: TwilioOperation, status: number, problem: string, attempts: number) {
    super('SG_ERR_TWILIO_RESPONSE', `${operation}: unexpected response (HTTP ${status}): ${problem}`);
    this.name = 'TwilioResponseError';
    this.status = status;
    this.operation = operation;
    this.attempts = attempts;
  }
}

/**
 * What went wrong below HTTP:
 * - `timeout`: no complete answer within `timeoutMs` (the request may have been processed);
 * - `refused`: ECONNREFUSED, nothing listened, so nothing was sent;
 * - `reset`: the connection broke after it was made (the request may have been processed);
 * - `dns`: the host name did not resolve, so nothing was sent;
 * - `network`: any other socket or TLS failure.
 */
export type TransportFailure = 'timeout' | 'refused' | 'reset' | 'dns' | 'network';

/** No usable HTTP answer from Twilio. */
export class TwilioTransportError extends StreamgateError {
  readonly operation: TwilioOperation;
  readonly failure: TransportFailure;
  /** The system error code when there was one (`ECONNREFUSED`, `UND_ERR_SOCKET`, …). */
  readonly systemCode: string | null;
  /**
   * False only when the request provably never reached Twilio (`refused`, `dns`). When true, a
   * non-idempotent operation (CreateStream) may have taken effect although it "failed".
   */
  readonly mayHaveActed: boolean;
  /** Whether the client's retry policy for `operation` retries this failure. */
  readonly retryable: boolean;
  readonly attempts: number;

  constructor(
    operation: TwilioOperation,
    failure: TransportFailure,
    systemCode: string | null,
    retryable: boolean,
    attempts: number,
    options?: { cause?: unknown },
  ) {
    const detail = systemCode === null ? failure : `${failure} (${systemCode})`;
    super('SG_ERR_TWILIO_TRANSPORT', `${operation} failed: ${detail}`, options);
    this.name = 'TwilioTransportError';
    this.operation = operation;
    this.failure = failure;
    this.systemCode = systemCode;
    this.mayHaveActed = failure !== 'refused' && failure !== 'dns';
    this.retryable = retryable;
    this.attempts = attempts;
  }
}
