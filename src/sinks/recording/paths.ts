/**
 * Where a stream's recording files live. Every SID is checked against its pattern before it
 * becomes part of a path (docs/design.md "Files"), so a crafted `start` message cannot walk out of
 * the data directory.
 *
 *   {dataDir}/recordings/{AccountSid}/{CallSid}/
 *       {StreamSid}.wav.partial     while recording (header valid at every flush)
 *       {StreamSid}.partial.json    sidecar: what recovery needs to know (written with the first media)
 *       {StreamSid}.wav             when complete (renamed from .partial)
 *       {StreamSid}.json            manifest (written over the sidecar, fsynced, renamed; via
 *                                   .json.tmp when there is no sidecar)
 */
import { join, sep } from 'node:path';
import { assertSid } from '../../twilio/sids.js';

export interface RecordingPaths {
  readonly dir: string;
  readonly partial: string;
  readonly sidecar: string;
  readonly wav: string;
  readonly manifest: string;
}

/** The recordings root under a data directory. */
export function recordingsRoot(dataDir: string): string {
  return join(dataDir, 'recordings');
}

/** The last data directory's recordings root: one process records under one data directory. */
let lastRoot: { dataDir: string; root: string } | null = null;

/**
 * Paths of one stream's files. Throws InvalidInputError when a SID is malformed. A checked SID
 * is letters and hex digits only, so its path parts are concatenated: path.join normalises the
 * whole path on every call, which 500 streams starting at once paid five times each.
 */
export function recordingPaths(dataDir: string, accountSid: unknown, callSid: unknown, streamSid: unknown): RecordingPaths {
  const ac = assertSid('account', accountSid, 'accountSid');
  const ca = assertSid('call', callSid, 'callSid');
  const mz = assertSid('stream', streamSid, 'streamSid');
  if (lastRoot?.dataDir !== dataDir) lastRoot = { dataDir, root: recordingsRoot(dataDir) };
  const dir = `${lastRoot.root}${sep}${ac}${sep}${ca}`;
  const file = `${dir}${sep}${mz}`;
  return {
    dir,
    partial: `${file}.wav.partial`,
    sidecar: `${file}.partial.json`,
    wav: `${file}.wav`,
    manifest: `${file}.json`,
  };
}
