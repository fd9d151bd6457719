/**
 * Twilio REST error bodies (docs/twilio-protocol.md §7.2) and the codes the emulator answers with.
 *
 * Documented meanings: 20003 (authenticate), 20404 (not found), 20429 (too many requests),
 * 20500/20503 (Twilio-side), 21220 (invalid call state), 16022 (conference does not exist or
 * is completed). Where Twilio does not document the answer (§12), the choice is ours and is
 * written next to the constant.
 */
import { StreamgateError } from '../errors.js';

/** The legacy 2010-04-01 error body. */
export interface TwilioErrorBody {
  code: number;
  message: string;
  more_info: string;
  status: number;
  detail?: string;
}

/** Twilio error codes the emulator uses. */
export const TWILIO_CODES = {
  /**
   * Invalid or missing parameter. Twilio's exact code varies per resource and is not
   * documented for these operations; 20001 is our choice.
   */
  invalidParameter: 20001,
  authenticate: 20003,
  notFound: 20404,
  tooManyRequests: 20429,
  internal: 20500,
  unavailable: 20503,
  /** "Url is not a valid URL". */
  invalidUrl: 21205,
  /**
   * Invalid call state: CreateStream on a call that is not in-progress, and (our choice,
   * undocumented) more than 4 tracks on one call or a duplicate stream Name.
   */
  invalidCallState: 21220,
  /**
   * "The requested conference sid or friendly name refers to a non-existent or completed
   * conference." Our answer to ending an already-completed conference, with HTTP 400 (users
   * report "Bad request"; docs/twilio-protocol.md §6.1).
   */
  conferenceCompleted: 16022,
  /** "Twiml size exceeded maximum allowed value of 4000 characters". */
  twimlTooLarge: 32018,
} as const;

/** A REST failure carrying the HTTP status and Twilio body the emulator answers with. */
export class SimRestError extends StreamgateError {
  readonly httpStatus: number;
  readonly twilioCode: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(httpStatus: number, twilioCode: number, message: string, headers: Record<string, string> = {}) {
    super('SG_ERR_SIM_REST', message);
    this.name = 'SimRestError';
    this.httpStatus = httpStatus;
    this.twilioCode = twilioCode;
    this.headers = headers;
  }

  body(): TwilioErrorBody {
    const body: TwilioErrorBody = {
      code: this.twilioCode,
      message: this.message,
      more_info: `https://www.twilio.com/docs/errors/${this.twilioCode}`,
      status: this.httpStatus,
    };
    // twilio-node fixtures show `detail: ""` on 20003 bodies.
    if (this.twilioCode === TWILIO_CODES.authenticate) body.detail = '';
    return body;
  }
}

export function notFound(path: string): SimRestError {
  return new SimRestError(404, TWILIO_CODES.notFound, `The requested resource ${path} was not found`);
}

export function authenticate(): SimRestError {
  return new SimRestError(401, TWILIO_CODES.authenticate, 'Authenticate', {
    'WWW-Authenticate': 'Basic realm="Twilio API"',
  });
}

export function badRequest(code: number, message: string): SimRestError {
  return new SimRestError(400, code, message);
}
