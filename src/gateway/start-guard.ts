/**
 * Vets a stream's `start` by the per-call token the gateway put on CreateStream
 * (twilio/stream-token.ts). The X-Twilio-Signature on the upgrade proves Twilio dialed us;
 * the token proves the gateway asked for this stream of this call (and conference). A
 * rejection reason makes the session close with 1008 before any sink opens.
 */
import type { StartFields } from '../twilio/protocol.js';
import { STREAM_TOKEN_PARAMETER, verifyStreamToken } from '../twilio/stream-token.js';
import { CONFERENCE_PARAMETER } from '../core/stream.js';

export type StartRejection = 'token_invalid' | 'token_missing';

export interface StartGuardOptions {
  /** deriveStreamTokenSecret(TWILIO_AUTH_TOKEN): the key the stream starter signs with. */
  secret: Buffer;
  /** STREAM_TOKEN_REQUIRED: refuse a `start` that carries no token. */
  required: boolean;
}

/**
 * The `checkStart` for GatewayParts. A token that is present is always checked (a wrong one is
 * refused even when tokens are optional); a missing one is refused only when required. The
 * token is bound to the conference too, so a `conferenceSid` parameter swapped for another
 * conference fails the check.
 */
export function createStartGuard(opts: StartGuardOptions): (start: StartFields) => StartRejection | null {
  const { secret, required } = opts;
  return (start) => {
    const params = start.customParameters;
    const token = params[STREAM_TOKEN_PARAMETER];
    if (token === undefined) return required ? 'token_missing' : null;
    return verifyStreamToken(secret, token, start.callSid, params[CONFERENCE_PARAMETER]) ? null : 'token_invalid';
  };
}
