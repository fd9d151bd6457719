/**
 * Start-up repair of recordings a dead process left behind. A killed gateway leaves, per stream,
 * `{StreamSid}.wav.partial` (valid up to its last header patch, and holding audio written after
 * it) and, once the stream had media, the `{StreamSid}.partial.json` sidecar (written once, in
 * place: an empty or cut one reads as none). For each one found:
 *
 *   .wav.partial ─► header sizes rewritten from the file length (cut to whole sample frames)
 *                ─► fsync, rename to .wav ─► manifest with "recovered": true ─► sidecar removed
 *
 * It also finishes a stream that died between the rename and its manifest (a .wav and a sidecar
 * but no .json), and removes stale temp files. Counters and gaps died with the process, so a
 * recovered manifest has them as null; SIDs come from the (validated) path, the rest from the
 * sidecar when it is readable and agrees with the WAV header (format, channels), else from the
 * header; a sidecar set aside is named in the manifest's `error`.
 */
import type { Dirent } from 'node:fs';
import { open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isSid } from '../../twilio/sids.js';
import type { Track } from '../../core/stream.js';
import type { Archiver } from './archiver.js';
import { exists, fsyncDir, writeFully, writeJsonAtomic } from './file-ops.js';
import { sha256FileOffThread } from './file-hasher.js';
import type { RecordingManifest, RecordingSidecar } from './manifest.js';
import { recordingPaths, recordingsRoot, type RecordingPaths } from './paths.js';
import {
  MAX_HEADER_BYTES,
  SAMPLE_RATE,
  WAVE_FORMAT_MULAW,
  WAVE_FORMAT_PCM,
  parseWavHeader,
  wavLayout,
  writeWavHeader,
  type WavLayout,
} from './wav-header.js';

/** The log methods recovery uses (a pino logger fits). */
export type RecoveryLog = Pick<Logger, 'info' | 'warn' | 'error'>;

export interface RecoveredRecording {
  readonly wavPath: string;
  readonly manifestPath: string;
  readonly manifest: RecordingManifest;
}

export interface RecoveryReport {
  readonly recovered: RecoveredRecording[];
  /** Streams that could not be repaired; their files are left as they were. */
  readonly failed: { readonly path: string; readonly error: string }[];
}

const LEFTOVER = /^(MZ[0-9a-fA-F]{32})\.(wav\.partial|partial\.json)$/;
const TEMP = /^MZ[0-9a-fA-F]{32}\.(json|partial\.json)\.tmp$/;

export interface RecoveryOptions {
  /** Hands each recovered recording to the archive too, as the sink does after a close. */
  readonly archiver?: Archiver;
}

/**
 * Repairs every partial recording under `{dataDir}/recordings`. Call once at start-up, before
 * any stream opens. Never throws for one bad file: it is logged and listed in `failed`. An
 * archiver failure is logged and leaves the recovered files in place.
 */
export async function recoverPartialRecordings(
  dataDir: string,
  log: RecoveryLog,
  opts: RecoveryOptions = {},
): Promise<RecoveryReport> {
  const report: RecoveryReport = { recovered: [], failed: [] };
  const root = recordingsRoot(dataDir);
  for (const account of await dirs(root)) {
    if (!isSid('account', account)) continue;
    for (const call of await dirs(join(root, account))) {
      if (!isSid('call', call)) continue;
      const dir = join(root, account, call);
      const streams = new Set<string>();
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const m = LEFTOVER.exec(name);
        if (m !== null) streams.add(m[1]!);
        else if (TEMP.test(name)) await unlink(join(dir, name)).catch(() => undefined);
      }
      for (const stream of streams) {
        const paths = recordingPaths(dataDir, account, call, stream);
        try {
          const rec = await recoverOne(paths, account, call, stream, log);
          if (rec !== null) {
            report.recovered.push(rec);
            log.info({ wavPath: rec.wavPath, durationMs: rec.manifest.durationMs }, 'recovered a partial recording');
            await opts.archiver?.archive(rec).catch((err: unknown) => {
              log.error({ err, wavPath: rec.wavPath }, 'recovered recording could not be archived; it stays where it is');
            });
          }
        } catch (err) {
          report.failed.push({ path: paths.partial, error: err instanceof Error ? err.message : String(err) });
          log.error({ err, path: paths.partial }, 'could not recover a partial recording; left as it is');
        }
      }
    }
  }
  return report;
}

async function recoverOne(
  paths: RecordingPaths,
  accountSid: string,
  callSid: string,
  streamSid: string,
  log: RecoveryLog,
): Promise<RecoveredRecording | null> {
  let sidecar = await readSidecar(paths.sidecar);
  const hasPartial = await exists(paths.partial);
  const hasWav = await exists(paths.wav);
  if (hasPartial && hasWav) throw new Error(`both ${paths.partial} and ${paths.wav} exist`);
  if (!hasPartial && !hasWav) {
    // Died before the .partial was created: nothing was recorded.
    await unlink(paths.sidecar).catch(() => undefined);
    return null;
  }
  if (!hasPartial && (await exists(paths.manifest))) {
    // Died after the manifest, before removing the sidecar: the recording is complete.
    await unlink(paths.sidecar).catch(() => undefined);
    return null;
  }
  let found: FoundLayout;
  let wallEnd: Date;
  if (hasPartial) {
    ({ found, wallEnd } = await repair(paths.partial, sidecar, log));
    await rename(paths.partial, paths.wav);
    fsyncDir(paths.dir);
  } else {
    found = layoutFrom(sidecar, await readHead(paths.wav), log, paths.wav);
    wallEnd = (await stat(paths.wav)).mtime;
  }
  const { layout } = found;
  sidecar = found.sidecar;
  const st = await stat(paths.wav);
  const dataBytes = Math.max(0, st.size - layout.headerBytes);
  const durationMs = Math.floor(dataBytes / layout.blockAlign) / (SAMPLE_RATE / 1000);
  const mediaStartMs = sidecar?.mediaStartMs ?? null;
  const manifest: RecordingManifest = {
    version: 1,
    accountSid,
    callSid,
    streamSid,
    conferenceSid: sidecar?.conferenceSid ?? null,
    tracks: sidecar?.tracks ?? (layout.channels === 2 ? ['inbound', 'outbound'] : ['inbound']),
    customParameters: sidecar?.customParameters ?? {},
    format: layout.format,
    sampleRate: SAMPLE_RATE,
    channels: layout.channels,
    mediaStartMs,
    mediaEndMs: mediaStartMs === null ? null : mediaStartMs + durationMs,
    wallStart: sidecar !== null && sidecar.wallStart !== '' ? sidecar.wallStart : null,
    wallEnd: wallEnd.toISOString(),
    durationMs,
    framesReceived: null,
    framesLost: null,
    framesDuplicate: null,
    framesLate: null,
    framesLateDropped: null,
    framesDropped: null,
    framesIgnored: null,
    gaps: null,
    discontinuities: null,
    stopped: null,
    bytes: st.size,
    sha256: await sha256FileOffThread(paths.wav),
    recovered: true,
    closeReason: null,
    error: found.note,
  };
  await writeJsonAtomic(paths.manifest, manifest);
  await unlink(paths.sidecar).catch(() => undefined);
  fsyncDir(paths.dir);
  return { wavPath: paths.wav, manifestPath: paths.manifest, manifest };
}

/** Cuts the file to whole sample frames and rewrites its header from the length. */
async function repair(
  path: string,
  sidecar: RecordingSidecar | null,
  log: RecoveryLog,
): Promise<{ found: FoundLayout; wallEnd: Date }> {
  const fh = await open(path, 'r+');
  try {
    const st = await fh.stat();
    const head = Buffer.alloc(MAX_HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const found = layoutFrom(sidecar, head.subarray(0, bytesRead), log, path);
    const { layout } = found;
    let dataBytes = Math.max(0, st.size - layout.headerBytes);
    dataBytes -= dataBytes % layout.blockAlign;
    await fh.truncate(layout.headerBytes + dataBytes);
    if ((dataBytes & 1) === 1) await writeFully(fh, Buffer.alloc(1), 0, 1, layout.headerBytes + dataBytes);
    writeWavHeader(head, layout, dataBytes, true);
    await writeFully(fh, head, 0, layout.headerBytes, 0);
    await fh.sync();
    return { found, wallEnd: st.mtime };
  } finally {
    await fh.close();
  }
}

/** The layout recovery settled on, the sidecar if it is believed, and what the manifest should say. */
interface FoundLayout {
  readonly layout: WavLayout;
  readonly sidecar: RecordingSidecar | null;
  /** Set when the sidecar was set aside; goes into the manifest's `error`. */
  readonly note: string | null;
}

/**
 * The file's layout. The sidecar and the header must agree on format and channels: a sidecar
 * that disagrees with a readable header describes some other stream (a stream that reused the
 * SID could once overwrite it), so the header wins and nothing else of the sidecar is used. With
 * one of them unreadable the other tells; with neither, 16-bit mono is assumed.
 */
function layoutFrom(sidecar: RecordingSidecar | null, head: Uint8Array, log: RecoveryLog, path: string): FoundLayout {
  const fromHeader = headerLayout(head);
  if (sidecar !== null) {
    if (fromHeader === null || (fromHeader.format === sidecar.format && fromHeader.channels === sidecar.channels)) {
      return { layout: wavLayout(sidecar.format, sidecar.channels), sidecar, note: null };
    }
    const note =
      `recovery: the sidecar says ${sidecar.channels}-channel ${sidecar.format} but the WAV header says ` +
      `${fromHeader.channels}-channel ${fromHeader.format}; the header was used and the sidecar ignored`;
    log.warn({ path, sidecar: { format: sidecar.format, channels: sidecar.channels }, header: { format: fromHeader.format, channels: fromHeader.channels } }, note);
    return { layout: fromHeader, sidecar: null, note };
  }
  if (fromHeader !== null) return { layout: fromHeader, sidecar: null, note: null };
  log.warn({ path }, 'partial recording has neither sidecar nor readable header; assuming 16-bit mono');
  return { layout: wavLayout('pcm16', 1), sidecar: null, note: null };
}

/** The layout a header describes, when it is one this module writes; else null. */
function headerLayout(head: Uint8Array): WavLayout | null {
  const h = parseWavHeader(head);
  if (h === null || (h.channels !== 1 && h.channels !== 2)) return null;
  if (h.formatTag === WAVE_FORMAT_PCM && h.bitsPerSample === 16) return wavLayout('pcm16', h.channels);
  if (h.formatTag === WAVE_FORMAT_MULAW && h.bitsPerSample === 8) return wavLayout('mulaw', h.channels);
  return null;
}

async function readSidecar(path: string): Promise<RecordingSidecar | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const s = raw as Partial<RecordingSidecar>;
  const formatOk = s.format === 'pcm16' || s.format === 'mulaw';
  const channelsOk = s.channels === 1 || s.channels === 2;
  if (!formatOk || !channelsOk) return null;
  const tracks = Array.isArray(s.tracks) ? s.tracks.filter((t): t is Track => t === 'inbound' || t === 'outbound') : null;
  const params =
    typeof s.customParameters === 'object' && s.customParameters !== null ? (s.customParameters as Record<string, string>) : {};
  return {
    version: 1,
    accountSid: String(s.accountSid ?? ''),
    callSid: String(s.callSid ?? ''),
    streamSid: String(s.streamSid ?? ''),
    conferenceSid: typeof s.conferenceSid === 'string' ? s.conferenceSid : null,
    tracks: tracks !== null && tracks.length === s.channels ? tracks : s.channels === 2 ? ['inbound', 'outbound'] : ['inbound'],
    customParameters: params,
    format: s.format!,
    channels: s.channels!,
    wallStart: typeof s.wallStart === 'string' ? s.wallStart : '',
    mediaStartMs: typeof s.mediaStartMs === 'number' && Number.isFinite(s.mediaStartMs) ? s.mediaStartMs : null,
  };
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(MAX_HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function dirs(path: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) if (e.isDirectory()) out.push(e.name);
  return out;
}
