/**
 * The per-call stream token. Twilio drops query strings from stream URLs, so the only way to
 * tie a Media Streams connection to a CreateStream the gateway made is a custom parameter, which
 * Twilio echoes in `start.customParameters` (docs/twilio-protocol.md §1). The token is an HMAC bound
 * to the CallSid (and the conference, when there is one), so a token seen on one call cannot
 * be replayed for another.
 *
 * It complements, and does not replace, the X-Twilio-Signature check on the upgrade: the
 * signature proves Twilio dialed us; the token proves the gateway asked for this stream.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Name of the custom parameter (`ParameterN.Name`) carrying the token on CreateStream. */
export const STREAM_TOKEN_PARAMETER = 'sgToken';

/** Token length in base64url characters: 32 chars = 192 bits of the HMAC-SHA256 output. */
export const STREAM_TOKEN_LENGTH = 32;

// Domain separation: the auth token also keys X-Twilio-Signature (HMAC-SHA1); these labels make
// sure nothing computed here can equal a value computed for another purpose.
const SECRET_LABEL = 'streamgate/stream-token-secret/v1';
const TOKEN_LABEL = 'streamgate/stream-token/v1';

let processSecret: Buffer | null = null;

/**
 * The key for stream tokens. With an auth token it is derived from it, so every gateway
 * instance of the account computes the same key (a stream created by one instance may connect
 * to another). Without one it is a random 32-byte secret, the same for the life of the process.
 */
export function deriveStreamTokenSecret(authToken: string | undefined): Buffer {
  if (authToken !== undefined && authToken !== '') {
    return createHmac('sha256', authToken).update(SECRET_LABEL, 'utf8').digest();
  }
  processSecret ??= randomBytes(32);
  return processSecret;
}

/** The token for a stream of `callSid` (in `conferenceSid`, when given): base64url, 32 chars. */
export function createStreamToken(secret: Buffer | string, callSid: string, conferenceSid?: string): string {
  // Newline-separated fields: SIDs contain no newline, so ("CA1", "") and ("CA", "1…") cannot collide.
  return createHmac('sha256', secret)
    .update(`${TOKEN_LABEL}\n${callSid}\n${conferenceSid ?? ''}`, 'utf8')
    .digest('base64url')
    .slice(0, STREAM_TOKEN_LENGTH);
}

/** True when `token` is the token for `callSid` (and `conferenceSid`); constant-time compare. */
export function verifyStreamToken(
  secret: Buffer | string,
  token: string | undefined | null,
  callSid: string,
  conferenceSid?: string,
): boolean {
  if (typeof token !== 'string' || token.length !== STREAM_TOKEN_LENGTH) return false;
  const expected = Buffer.from(createStreamToken(secret, callSid, conferenceSid), 'utf8');
  const given = Buffer.from(token, 'utf8');
  // Multi-byte characters can make the byte lengths differ even when the char counts match.
  return given.length === expected.length && timingSafeEqual(given, expected);
}
