/**
 * Twilio's Media Streams connection errors (docs/twilio-protocol.md §11) and how a failed dial maps
 * onto them. The StreamError of a stream-error callback reads `<name>: <detail>`.
 */

export const STREAM_ERRORS = {
  unknown: { code: 31900, name: 'Stream - Unknown Error' },
  timeout: { code: 31901, name: 'Stream - WebSocket - Connection Timeout' },
  refused: { code: 31902, name: 'Stream - WebSocket - Connection Refused' },
  brokenPipe: { code: 31903, name: 'Stream - WebSocket - Connection Broken Pipe' },
  unreachable: { code: 31904, name: 'Stream - WebSocket - Host Unreachable' },
  tls: { code: 31910, name: 'Stream - WebSocket - SSL Protocol Error' },
  handshake: { code: 31920, name: 'Stream - WebSocket - Handshake Error' },
  closed: { code: 31921, name: 'Stream - WebSocket - Close Error' },
  scheme: { code: 31922, name: 'Stream - WebSocket - URL Schema Not Supported' },
  malformedUrl: { code: 31923, name: 'Stream - WebSocket - Malformed URL' },
} as const;

export type StreamErrorKind = (typeof STREAM_ERRORS)[keyof typeof STREAM_ERRORS];

/** A stream failure as recorded and reported. */
export interface StreamError {
  code: number;
  message: string;
}

export function streamError(kind: StreamErrorKind, detail: string): StreamError {
  return { code: kind.code, message: `${kind.name}: ${detail}` };
}

/** The 319xx kind of an error raised while dialling (before the upgrade completed). */
export function classifyConnectError(err: NodeJS.ErrnoException): StreamErrorKind {
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return STREAM_ERRORS.refused;
  if (code === 'ETIMEDOUT' || /handshake has timed out/i.test(err.message)) return STREAM_ERRORS.timeout;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return STREAM_ERRORS.unreachable;
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(`${code} ${err.message}`)) return STREAM_ERRORS.tls;
  return STREAM_ERRORS.unknown;
}
