/**
 * Where a stream's recording files live. Every SID is checked against its pattern before it
 * becomes part of a path (docs/design.md "Files"), so a crafted `start` message cannot walk out of
 * the data directory.
 *
 *   {dataDir}/recordings/{AccountSid}/{CallSid}/
 *       {StreamSid}.wav.partial     while recording (header valid at every flush)
 *       {StreamSid}.partial.json    sidecar: what recovery needs to know (written at open)
 *       {StreamSid}.wav             when complete (renamed from .partial)
 *       {StreamSid}.json            manifest (written via .json.tmp + rename)
 */
import { join } from 'node:path';
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

/** Paths of one stream's files. Throws InvalidInputError when a SID is malformed. */
export function recordingPaths(dataDir: string, accountSid: unknown, callSid: unknown, streamSid: unknown): RecordingPaths {
  const ac = assertSid('account', accountSid, 'accountSid');
  const ca = assertSid('call', callSid, 'callSid');
  const mz = assertSid('stream', streamSid, 'streamSid');
  const dir = join(recordingsRoot(dataDir), ac, ca);
  return {
    dir,
    partial: join(dir, `${mz}.wav.partial`),
    sidecar: join(dir, `${mz}.partial.json`),
    wav: join(dir, `${mz}.wav`),
    manifest: join(dir, `${mz}.json`),
  };
}
