/**
 * What a burst of stream starts and stops costs the event loop's thread, in CPU time, without
 * sockets: N real StreamSessions with the production sinks (createAppGateway: recording on,
 * transcription off), all N `start`s handed over in one turn (as one poll phase delivers them),
 * 25 frames each, then all N `stop`s in one turn. The main thread's own CPU time comes from
 * /proc/self/task/<pid>/schedstat (Linux), so a busy host that preempts the process changes
 * the wall times but hardly these; the burst bench (burst.bench.ts) measures the loop delay
 * and probes over real sockets.
 *
 *   npm run build && node dist/bench/session-setup.bench.js [--streams 500] [--tree <other checkout>]
 *
 * --tree runs another checkout's dist (built there) with this same driver, for A/B runs.
 * Per run it prints, in ms of main-thread CPU: the starts' own turn, the work they left for
 * later turns (the next 1.5 s: opens, replies), the stops through every sink's end, and the
 * longest event-loop delay after each burst's own turn (1 ms monitor).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

type Mod = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- modules of another checkout

/** This thread's CPU time in ms (schedstat: ns on CPU), or the wall clock where there is none. */
function threadCpuMs(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return performance.now();
  }
}

export interface SetupRun {
  startTurnMs: number;
  startLaterMs: number;
  stopMs: number;
  startLoopMaxMs: number;
  stopLoopMaxMs: number;
  dropped: number;
  errors: number;
}

/**
 * One run. `root` holds `src/` and `bench/`: a dist directory (the .js files), or the checkout
 * itself with `ext` 'ts' (under vitest or tsx, as the bench smoke test runs it).
 */
export async function runSetup(root: string, streams: number, ext: 'js' | 'ts' = 'js'): Promise<SetupRun> {
  const imp = (p: string): Promise<Mod> => import(pathToFileURL(join(root, `${p}.${ext}`)).href) as Promise<Mod>;
  const { loadConfig } = await imp('src/gateway/config');
  const { createAppGateway } = await imp('src/gateway/app');
  const { StreamSession } = await imp('src/gateway/media/stream-session');
  const tf = await imp('bench/lib/twilio-frames');
  const dataDir = mkdtempSync(join(tmpdir(), 'streamgate-setup-'));
  const gw = await createAppGateway(loadConfig({ HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', TRANSCRIPTION: 'none', STREAMGATE_DATA_DIR: dataDir }));
  try {
    await new Promise((r) => setTimeout(r, 500)); // the I/O thread boots
    const payload = Buffer.from((tf.speechLikeFrames(1) as Uint8Array[])[0]!).toString('base64');
    let ended = 0;
    let allEnded: () => void = () => undefined;
    const everyEnded = new Promise<void>((r) => (allEnded = r));
    const ids: { streamSid: string }[] = [];
    const sessions: Mod[] = [];
    for (let i = 0; i < streams; i++) {
      ids.push(tf.newStreamIds());
      const s = new StreamSession({
        log: gw.log,
        metrics: gw.metrics,
        bus: gw.bus,
        sinkFactories: gw.sinkFactories,
        maxFrameBytes: 4096,
        checkStart: null,
        closeSocket: () => undefined,
        onStarted: () => undefined,
        onStopped: () => undefined,
        onEnded: () => {
          if (++ended === streams) allEnded();
        },
      });
      s.onText(tf.connectedMessage(), performance.now());
      sessions.push(s);
    }
    const media = ids.map((id) => Array.from({ length: 25 }, (_, f) => Buffer.from(tf.mediaMessage(id.streamSid, 2 + f, 'inbound', f + 1, f * 20, payload) as string)));
    const loop = monitorEventLoopDelay({ resolution: 1 });
    const loopMax = () => Math.max(0, loop.max / 1e6 - 1);

    let c0 = threadCpuMs();
    for (let i = 0; i < streams; i++) sessions[i]!.onText(tf.startMessage(ids[i], ['inbound']), performance.now());
    const startTurnMs = threadCpuMs() - c0;
    for (let i = 0; i < streams; i++) for (const m of media[i]!) sessions[i]!.onTextBytes(m, performance.now());
    loop.enable();
    c0 = threadCpuMs();
    await new Promise((r) => setTimeout(r, 1500));
    const startLaterMs = threadCpuMs() - c0;
    const startLoopMaxMs = loopMax();
    loop.reset();

    c0 = threadCpuMs();
    for (let i = 0; i < streams; i++) sessions[i]!.onText(tf.stopMessage(ids[i], 27), performance.now());
    await everyEnded;
    const stopMs = threadCpuMs() - c0;
    const stopLoopMaxMs = loopMax();
    loop.disable();
    const rec = gw.metrics.sinkStats('recording');
    return { startTurnMs, startLaterMs, stopMs, startLoopMaxMs, stopLoopMaxMs, dropped: rec.dropped, errors: rec.errors };
  } finally {
    await gw.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const val = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const tree = val('--tree');
  const distDir = tree === undefined ? fileURLToPath(new URL('..', import.meta.url)) : join(resolve(tree), 'dist');
  const r = await runSetup(distDir, Number(val('--streams') ?? 500));
  const f = (x: number) => x.toFixed(1);
  process.stdout.write(
    `${tree ?? 'this tree'} N=${Number(val('--streams') ?? 500)}: main-thread CPU ms: starts' turn ${f(r.startTurnMs)}, left for later turns ${f(r.startLaterMs)}, stops ${f(r.stopMs)}; ` +
      `loop max after the starts ${f(r.startLoopMaxMs)} ms, after the stops ${f(r.stopLoopMaxMs)} ms; recording dropped ${r.dropped}, errors ${r.errors}\n`,
  );
  process.exit(0);
}
