/**
 * Vets a stream's `start`: its account, then the per-call token the gateway put on CreateStream
 * (twilio/stream-token.ts). The X-Twilio-Signature on the upgrade proves Twilio dialed us (but
 * it covers only the URL, so it is the same for every stream); the token proves the gateway
 * asked for a stream of this call (and conference), and the ledger (token-ledger.ts) that it
 * is this stream and the token's first use. A rejection reason makes the session close with
 * 1008 before any sink opens; the session counts it in `protocol_errors_total{reason}`. The
 * media path sees only the `checkStart` function (src/gateway/media/stream-session.ts).
 */
import type { StartFields } from '../../twilio/protocol.js';
import { STREAM_TOKEN_PARAMETER, verifyStreamToken } from '../../twilio/stream-token.js';
import { CONFERENCE_PARAMETER } from '../../core/stream.js';
import type { TokenLedger } from './token-ledger.js';

export type StartRejection = 'account_mismatch' | 'token_invalid' | 'token_missing' | 'token_reused' | 'token_stream_mismatch';

export interface StartGuardOptions {
  /** deriveStreamTokenSecret(TWILIO_AUTH_TOKEN): the key the stream starter signs with. */
  secret: Buffer;
  /** STREAM_TOKEN_REQUIRED: refuse a `start` that carries no token. */
  required: boolean;
  /** TWILIO_ACCOUNT_SID: refuse a `start` of any other account. */
  accountSid?: string;
  /** The stream starter's ledger of the streams it asked for. */
  ledger: TokenLedger;
}

/**
 * The `checkStart` for GatewayParts. A token that is present is always checked (a wrong one is
 * refused even when tokens are optional); a missing one is refused only when required. The
 * token is bound to the conference too, so a `conferenceSid` parameter swapped for another
 * conference fails the check.
 */
export function createStartGuard(opts: StartGuardOptions): (start: StartFields) => StartRejection | null {
  const { secret, required, accountSid, ledger } = opts;
  return (start) => {
    if (accountSid !== undefined && start.accountSid !== accountSid) return 'account_mismatch';
    const params = start.customParameters;
    const token = params[STREAM_TOKEN_PARAMETER];
    if (token === undefined) return required ? 'token_missing' : null;
    const conferenceSid = params[CONFERENCE_PARAMETER];
    if (!verifyStreamToken(secret, token, start.callSid, conferenceSid)) return 'token_invalid';
    return ledger.claim(token, start.callSid, conferenceSid ?? null, start.streamSid);
  };
}

