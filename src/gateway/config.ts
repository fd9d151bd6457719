/**
 * Gateway configuration from the environment (docs/design.md "Environment"). Every value is
 * checked here, once; a bad one stops start-up with one line naming the variable.
 */
import { availableParallelism } from 'node:os';
import { ConfigError } from '../errors.js';
import { DEEPGRAM_DEFAULT_URL, DEEPGRAM_FIXED_PARAMS } from '../sinks/transcription/engines/remote/deepgram.js';
import { VOSK_DEFAULT_URL } from '../sinks/transcription/engines/remote/vosk.js';
import { defaultTranscriptionSlots } from '../sinks/transcription/capacity.js';
import { STREAM_TRACKS, type StreamTrack } from '../twilio/rest-client.js';
import { isSid } from '../twilio/sids.js';

export type RecordingFormat = 'pcm16' | 'mulaw';
export type TranscriptionChoice = 'pocketsphinx' | 'deepgram' | 'vosk' | 'none';

export interface GatewayConfig {
  port: number;
  host: string;
  /** Origin Twilio reaches, without trailing slash. */
  publicUrl: string;
  twilioAccountSid: string | undefined;
  twilioAuthToken: string | undefined;
  twilioApiKeySid: string | undefined;
  twilioApiKeySecret: string | undefined;
  twilioApiUrl: string;
  dataDir: string;
  /** Undefined means "pocketsphinx when installed, else none", decided at start-up. */
  transcription: TranscriptionChoice | undefined;
  /** TRANSCRIPTION=deepgram: the API key (required then; never logged), URL and extra query parameters. */
  deepgramApiKey: string | undefined;
  deepgramUrl: string;
  deepgramParams: URLSearchParams;
  /** TRANSCRIPTION=vosk: the Vosk server's WebSocket URL. */
  voskUrl: string;
  /** Remote engines: audio resent after a reconnection, at most, seconds. */
  asrReplaySeconds: number;
  /** Remote engines: a service that answers nothing this long while audio flows is reconnected, seconds. */
  asrStallSeconds: number;
  rulesFile: string | undefined;
  transcriptWebhookUrl: string | undefined;
  adminToken: string | undefined;
  streamTokenRequired: boolean;
  recordingFormat: RecordingFormat;
  transcriptionMaxStreams: number;
  maxStreams: number | undefined;
  drainTimeoutSeconds: number;
  logLevel: string;
  /** Audio the recording sink may hold per stream while the disk catches up. */
  recordingBufferMs: number;
  /** Longest media-timestamp jump recorded as silence; a longer one is a counted discontinuity. */
  maxGapMs: number;
  /** Free space (MiB) the data directory keeps: below it new streams get 503 and recordings stop. 0: off. */
  dataDirMinFreeMb: number;
  /** Largest recording per stream (MiB, at most 4095: a WAV never reaches 4 GiB). */
  recordingMaxMb: number;
  /** Close a socket that sends no `start` within this many seconds. */
  handshakeTimeoutSeconds: number;
  /** Close a started stream that sends no message for this many seconds. */
  stallTimeoutSeconds: number;
  /** Largest WebSocket message accepted; Twilio's media messages are ~400 bytes. */
  maxMessageBytes: number;
  /** Refuse upgrades while event-loop delay p99 (ms) is above this. */
  maxEventLoopDelayMs: number;
  /** On participant-join, stream the participant's call with this track ('off' disables). */
  autoStreamTrack: StreamTrack | 'off';
  /** Shared state for several processes (README "Running several instances"); may carry a password: never log it. */
  redisUrl: string | undefined;
  /** Gateway processes on one port (node:cluster); more than one needs `redisUrl`. */
  workers: number;
  /** Paced loopback streams a new process carries before it listens, so V8 compiles the media path first (src/warm-up.ts). 0: none. */
  warmUpStreams: number;
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): GatewayConfig {
  const port = int(env, 'PORT', 8080, 0, 65535);
  const twilioAccountSid = optional(env, 'TWILIO_ACCOUNT_SID');
  if (twilioAccountSid !== undefined && !isSid('account', twilioAccountSid)) {
    throw new ConfigError('TWILIO_ACCOUNT_SID must look like AC followed by 32 hex digits');
  }
  const twilioApiKeySid = optional(env, 'TWILIO_API_KEY_SID');
  if (twilioApiKeySid !== undefined && !isSid('apiKey', twilioApiKeySid)) {
    throw new ConfigError('TWILIO_API_KEY_SID must look like SK followed by 32 hex digits');
  }
  const twilioApiKeySecret = optional(env, 'TWILIO_API_KEY_SECRET');
  if ((twilioApiKeySid === undefined) !== (twilioApiKeySecret === undefined)) {
    throw new ConfigError('TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET must be set together');
  }
  const logLevel = optional(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const maxStreamsRaw = optional(env, 'MAX_STREAMS');
  const redisUrl = optional(env, 'REDIS_URL') === undefined ? undefined : url(env, 'REDIS_URL', '', ['redis:', 'rediss:'], true);
  const workers = workersOf(env);
  if (workers > 1 && redisUrl === undefined) {
    throw new ConfigError(`WORKERS=${workers} needs REDIS_URL: the processes share conferences, end claims and the stream list through Redis`);
  }
  const transcription = oneOf(env, 'TRANSCRIPTION', ['pocketsphinx', 'deepgram', 'vosk', 'none'] as const, undefined);
  const deepgramApiKey = optional(env, 'DEEPGRAM_API_KEY');
  if (transcription === 'deepgram' && deepgramApiKey === undefined) {
    throw new ConfigError('TRANSCRIPTION=deepgram needs DEEPGRAM_API_KEY (a Deepgram API key, sent as "Authorization: Token …")');
  }
  return {
    port,
    host: optional(env, 'HOST') ?? '0.0.0.0',
    publicUrl: url(env, 'PUBLIC_URL', `http://localhost:${port}`, ['http:', 'https:', 'ws:', 'wss:']).replace(/\/+$/, ''),
    twilioAccountSid,
    twilioAuthToken: optional(env, 'TWILIO_AUTH_TOKEN'),
    twilioApiKeySid,
    twilioApiKeySecret,
    twilioApiUrl: url(env, 'TWILIO_API_URL', 'https://api.twilio.com', ['http:', 'https:']).replace(/\/+$/, ''),
    dataDir: optional(env, 'STREAMGATE_DATA_DIR') ?? './data',
    transcription,
    deepgramApiKey,
    deepgramUrl: url(env, 'DEEPGRAM_URL', DEEPGRAM_DEFAULT_URL, ['ws:', 'wss:']),
    deepgramParams: deepgramParams(env),
    voskUrl: url(env, 'VOSK_URL', VOSK_DEFAULT_URL, ['ws:', 'wss:']),
    asrReplaySeconds: int(env, 'ASR_REPLAY_SECONDS', 10, 1, 120),
    asrStallSeconds: int(env, 'ASR_STALL_SECONDS', 10, 1, 600),
    rulesFile: optional(env, 'RULES_FILE'),
    transcriptWebhookUrl: optional(env, 'TRANSCRIPT_WEBHOOK_URL') === undefined ? undefined : url(env, 'TRANSCRIPT_WEBHOOK_URL', '', ['http:', 'https:']),
    adminToken: optional(env, 'ADMIN_TOKEN'),
    streamTokenRequired: bool(env, 'STREAM_TOKEN_REQUIRED', false),
    recordingFormat: oneOf(env, 'RECORDING_FORMAT', ['pcm16', 'mulaw'] as const, 'pcm16'),
    // A local recogniser: as many tracks as the cores carry at its real-time factor; a remote service costs a socket.
    transcriptionMaxStreams: int(env, 'TRANSCRIPTION_MAX_STREAMS', transcription === 'deepgram' || transcription === 'vosk' ? 1000 : defaultTranscriptionSlots(), 0, 10_000),
    maxStreams: maxStreamsRaw === undefined ? undefined : int(env, 'MAX_STREAMS', 0, 1, 1_000_000),
    drainTimeoutSeconds: int(env, 'DRAIN_TIMEOUT', 30, 0, 86_400),
    logLevel,
    recordingBufferMs: int(env, 'RECORDING_BUFFER_MS', 5000, 100, 600_000),
    maxGapMs: int(env, 'MAX_GAP_MS', 5000, 20, 3_600_000),
    dataDirMinFreeMb: int(env, 'DATA_DIR_MIN_FREE_MB', 256, 0, 1_000_000_000),
    recordingMaxMb: int(env, 'RECORDING_MAX_MB', 4095, 1, 4095),
    handshakeTimeoutSeconds: int(env, 'HANDSHAKE_TIMEOUT', 10, 1, 3600),
    stallTimeoutSeconds: int(env, 'STALL_TIMEOUT', 30, 1, 86_400),
    maxMessageBytes: int(env, 'MAX_MESSAGE_BYTES', 64 * 1024, 1024, 16 * 1024 * 1024),
    maxEventLoopDelayMs: int(env, 'MAX_EVENT_LOOP_DELAY_MS', 200, 1, 60_000),
    autoStreamTrack: oneOf(env, 'AUTO_STREAM_TRACK', [...STREAM_TRACKS, 'off'] as const, 'inbound_track'),
    redisUrl,
    workers,
    warmUpStreams: int(env, 'WARMUP_STREAMS', 50, 0, 500),
  };
}

/** `WORKERS`: a number, or `auto` for one per core. */
function workersOf(env: Env): number {
  if (optional(env, 'WORKERS')?.toLowerCase() === 'auto') return Math.max(1, availableParallelism());
  return int(env, 'WORKERS', 1, 1, 1024);
}

/**
 * DEEPGRAM_PARAMS: extra query parameters (`model=nova-3&language=en&smart_format=true`). The
 * audio parameters are the gateway's to set: Twilio's mu-law goes out as it came.
 */
function deepgramParams(env: Env): URLSearchParams {
  const raw = optional(env, 'DEEPGRAM_PARAMS') ?? '';
  if (raw.length > 2000) throw new ConfigError('DEEPGRAM_PARAMS is longer than 2000 characters');
  const params = new URLSearchParams(raw.replace(/^\?/, ''));
  for (const key of params.keys()) {
    if (key in DEEPGRAM_FIXED_PARAMS) {
      throw new ConfigError(`DEEPGRAM_PARAMS must not set ${key}: the gateway sends Twilio's audio as ${Object.entries(DEEPGRAM_FIXED_PARAMS).map(([k, v]) => `${k}=${v}`).join('&')}`);
    }
    if (!/^[a-z_][a-z0-9_.]{0,63}$/i.test(key)) throw new ConfigError(`DEEPGRAM_PARAMS has a bad parameter name ${JSON.stringify(key.slice(0, 40))}`);
  }
  return params;
}

function optional(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, dflt: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return dflt;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const raw = optional(env, name);
  if (raw === undefined) return dflt;
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

function oneOf<T extends string, D extends T | undefined>(env: Env, name: string, values: readonly T[], dflt: D): T | D {
  const raw = optional(env, name);
  if (raw === undefined) return dflt;
  if (!(values as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
  }
  return raw as T;
}

/** `secret`: the value may carry a password, so an error does not repeat it. */
function url(env: Env, name: string, dflt: string, protocols: string[], secret = false): string {
  const raw = optional(env, name) ?? dflt;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an absolute URL${secret ? '' : `, got ${JSON.stringify(raw)}`}`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.map((p) => p.slice(0, -1)).join(' or ')}, got ${parsed.protocol.slice(0, -1)}`);
  }
  return raw;
}
