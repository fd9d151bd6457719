/**
 * The pocketsphinx engine against real `pocketsphinx_continuous` processes on the speech
 * fixtures. No mocks: what is asserted is what the recogniser does with 8 kHz telephone audio.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPocketsphinxEngine, DEFAULT_MODEL_DIR, isPocketsphinxInstalled } from '../../../src/sinks/transcription/engines/pocketsphinx.js';
import { prepareSpotter, SPOTTER_DEFAULTS, spotterFingerprint, TELEPHONE_CMN_INIT } from '../../../src/sinks/transcription/engines/spotter-args.js';
import type { PocketsphinxSession } from '../../../src/sinks/transcription/engines/pocketsphinx-session.js';
import { readClipPcm, speechClip } from '../../../src/sinks/transcription/speech-fixtures.js';
import { wordErrorRate } from '../../../src/sinks/transcription/wer.js';
import { sleep, waitFor } from '../../helpers/wait.js';
import { childPidOf, collector, feed, quietLog, silence } from './helpers.js';

const PHRASE = 'end the conference';
/**
 * After other speech the espeak-ng "en" clips score far below the default threshold for this
 * phrase (1e23: around 1e4, while "send the contract" scores 1e54), and the transcript does not
 * have them word for word: they are spotted with a rule's own `threshold:` (README), which leaves
 * the transcript's veto in place.
 */
const SENSITIVE = new Map([[PHRASE, 1e-5]]);

describe.runIf(isPocketsphinxInstalled())('pocketsphinx engine', () => {
  const engine = createPocketsphinxEngine({ log: quietLog });
  afterAll(() => engine.shutdown());

  it('transcribes a flite sentence with WER ≤ 15% and word times within 300 ms of the audio', async () => {
    const clip = speechClip('wer-1');
    const c = collector();
    const session = engine.open({ log: quietLog, phrases: [], ...c.callbacks });
    const startMs = 60_000; // media clock of a stream already a minute old
    await feed(session, readClipPcm(clip), startMs);
    await session.end();

    expect(c.results.length).toBeGreaterThan(0);
    expect(wordErrorRate(clip.text, c.text()).wer).toBeLessThanOrEqual(0.15);
    // Reference positions come from the synthesiser (flite's phone timing), not the recogniser.
    const heard = c.results.flatMap((r) => r.words);
    let matched = 0;
    for (const ref of clip.words!) {
      const w = heard.find((h) => h.word === ref.word && Math.abs(h.startMs - (startMs + ref.startMs)) < 1000);
      if (w === undefined) continue;
      matched++;
      expect(Math.abs(w.startMs - (startMs + ref.startMs))).toBeLessThanOrEqual(300);
      expect(Math.abs(w.endMs - (startMs + ref.endMs))).toBeLessThanOrEqual(300);
    }
    expect(matched).toBeGreaterThanOrEqual(clip.words!.length - 1);
    for (const r of c.results) {
      expect(r.isFinal).toBe(true);
      expect(r.startMs).toBe(r.words[0]!.startMs);
      expect(r.endMs).toBe(r.words.at(-1)!.endMs);
    }
  });

  it('spots "end the conference" in flite and espeak-ng speech and not in unrelated sentences', async () => {
    // phrase-espeak is left out: as a call's first words its spot starts inside "can" (0.94), which
    // the transcript's veto takes for another word (the "weekend" case, phrase-verifier.ts).
    const positives = ['phrase-flite', 'phrase-espeak-3', 'demo-bob'];
    const negatives = ['other-flite', 'other-espeak', 'demo-alice', 'wer-3'];
    const run = async (name: string) => {
      const clip = speechClip(name);
      const c = collector();
      const session = engine.open({ log: quietLog, phrases: ['End the conference'], ...c.callbacks });
      await feed(session, readClipPcm(clip), 0);
      await session.end();
      return { name, clip, hits: c.phrases };
    };
    // Two at a time: the CI machine has two cores.
    const all = [...positives, ...negatives];
    const outcomes = [];
    for (let i = 0; i < all.length; i += 2) outcomes.push(...(await Promise.all(all.slice(i, i + 2).map(run))));

    for (const o of outcomes) {
      if (positives.includes(o.name)) {
        expect(o.hits.map((h) => h.phrase), o.name).toEqual([PHRASE]);
        // Where the phrase is: flite clips carry word times; the hit must cover "end" … "conference".
        const words = o.clip.words;
        if (words !== undefined) {
          const end = words.find((w) => w.word === 'end')!;
          const conference = words.find((w) => w.word === 'conference')!;
          expect(Math.abs(o.hits[0]!.startMs - end.startMs), o.name).toBeLessThanOrEqual(300);
          expect(Math.abs(o.hits[0]!.endMs - conference.endMs), o.name).toBeLessThanOrEqual(300);
        }
      } else {
        expect(o.hits, o.name).toEqual([]);
      }
    }
  });

  it('a fresh recogniser spots the phrase in a stream\'s first words: the telephone starting cepstral mean, not the model\'s', async () => {
    // phrase-espeak-2 ("end the conference" as a call's first words, espeak-ng "en") scores 1e48
    // with TELEPHONE_CMN_INIT and 1e-3 with the model's wideband start value, below the default
    // floor (1e23): the first utterance was decoded against the wrong mean.
    const modelMean = createPocketsphinxEngine({ log: quietLog, cmnInit: null });
    const firstWords = async (eng: typeof engine) => {
      const c = collector();
      const clip = speechClip('phrase-espeak-2');
      const session = eng.open({ log: quietLog, phrases: [PHRASE], ...c.callbacks });
      await feed(session, readClipPcm(clip), 0);
      await feed(session, silence(1000), clip.durationMs);
      await session.end();
      // The recogniser finished the clip (its transcript came) before the spots are read.
      expect(c.results.length).toBeGreaterThan(0);
      return c.phrases.map((h) => h.phrase);
    };
    try {
      const [telephone, model] = await Promise.all([firstWords(engine), firstWords(modelMean)]);
      expect(telephone).toEqual([PHRASE]);
      expect(model).toEqual([]);
    } finally {
      await modelMean.shutdown();
    }
  });

  /**
   * The remaining phrase clips and the near misses, through ONE session (one recogniser and one
   * spotter process for all clips, as one long call): each clip, then 1 s of silence, on one
   * media clock; a hit belongs to the clip whose span (plus its silence) holds its start.
   *
   * Fed at real time, as a call sends it: a spot waits at most TRANSCRIPT_WAIT_MS (0.5 s) of wall
   * time for the transcript that may contradict it (phrase-verifier.ts). At real time the
   * transcript of near-contract comes 60-80 ms after its spot (a host at load 5-7); fed at twice
   * real time the language model fell 0.7-1.2 s behind the spotter on that host and near-contract
   * fired. A CPU-starved recogniser lags the same way, so on a saturated host it can fire at real
   * time too (bench/RESULTS.md: a late transcript is judged as none).
   */
  describe('phrase spotting over more clips in one session', () => {
    const positives = ['phrase-flite-2', 'phrase-espeak-2', 'phrase-espeak-3'];
    // near-attend ("did you attend the conference") is left out: the spotter matches the tail of
    // "attend", and the transcript cannot veto it without also vetoing "we can end the
    // conference" heard as "weekend" (phrase-verifier.ts). A known near miss (bench/RESULTS.md).
    const nearMisses = ['near-contract'];
    const GAP_MS = 1000;
    const SPEED = 1;
    // Room for all of it (~20 s of audio), so a recogniser that lags drops nothing.
    // The rule threshold (SENSITIVE) for the espeak-ng "en" clip; the near miss must still be
    // vetoed by the transcript at that lower floor.
    const roomy = createPocketsphinxEngine({ log: quietLog, bufferSeconds: 60, phraseThresholds: SENSITIVE });
    const placed: { name: string; atMs: number; durationMs: number }[] = [];
    const c = collector();

    beforeAll(async () => {
      try {
        const session = roomy.open({ log: quietLog, phrases: [PHRASE], ...c.callbacks });
        let at = 0;
        // Near misses between phrase clips: a late hit of one clip would land in the next window.
        for (const name of ['phrase-flite-2', 'near-contract', 'phrase-espeak-2', 'phrase-espeak-3']) {
          const clip = speechClip(name);
          placed.push({ name, atMs: at, durationMs: clip.durationMs });
          await feed(session, readClipPcm(clip), at, SPEED);
          at += clip.durationMs;
          await feed(session, silence(GAP_MS), at, SPEED);
          at += GAP_MS;
        }
        await session.end();
      } finally {
        await roomy.shutdown();
      }
    }, 60_000);

    const hitsOf = (name: string) => {
      const p = placed.find((x) => x.name === name)!;
      return c.phrases.filter((h) => h.startMs >= p.atMs && h.startMs < p.atMs + p.durationMs + GAP_MS);
    };

    it('decodes every clip without dropping audio or failing', () => {
      expect(placed.map((p) => p.name).sort()).toEqual([...positives, ...nearMisses].sort());
      expect(c.drops).toEqual([]);
      expect(c.errors).toEqual([]);
      expect(c.restarts).toBe(0);
      // Every clip produced some transcript: the recogniser heard all of them.
      for (const p of placed) expect(c.results.some((r) => r.endMs > p.atMs && r.startMs < p.atMs + p.durationMs), p.name).toBe(true);
    });

    it.each(positives)('spots the phrase once in %s, inside the clip', (name) => {
      const p = placed.find((x) => x.name === name)!;
      const hits = hitsOf(name);
      expect(hits.map((h) => h.phrase)).toEqual([PHRASE]);
      expect(hits[0]!.endMs).toBeLessThanOrEqual(p.atMs + p.durationMs + 100);
      const words = speechClip(name).words;
      if (words !== undefined) {
        const end = words.find((w) => w.word === 'end')!;
        const conference = words.find((w) => w.word === 'conference')!;
        expect(Math.abs(hits[0]!.startMs - (p.atMs + end.startMs))).toBeLessThanOrEqual(300);
        expect(Math.abs(hits[0]!.endMs - (p.atMs + conference.endMs))).toBeLessThanOrEqual(300);
      }
    });

    it.each(nearMisses)('does not fire on the near miss %s', (name) => {
      expect(hitsOf(name)).toEqual([]);
    });
  });

  it('restarts a killed recogniser, counts it, and transcribes later speech at the right times', async () => {
    const c = collector();
    const session = engine.open({ log: quietLog, phrases: [], ...c.callbacks }) as PocketsphinxSession;
    const first = speechClip('wer-2');
    await feed(session, readClipPcm(first), 0, 20);
    await feed(session, silence(600), first.durationMs, 20);
    await waitFor(() => c.results.length > 0, 10_000, 'first result');

    // Kill it while it decodes the next sentence: that audio was sent but never reported on,
    // so the new process must get it again (and speech arriving meanwhile waits in the ring).
    const second = speechClip('wer-1');
    const secondAt = 20_000;
    const pcm = readClipPcm(second);
    await feed(session, pcm.subarray(0, 16_000), secondAt);
    await sleep(120);
    const pid = session.pids().lm!;
    process.kill(pid, 'SIGKILL');
    await feed(session, pcm.subarray(16_000), secondAt + 2000);
    await waitFor(() => c.restarts === 1, 10_000, 'restart');
    await session.end();

    expect(session.restarts).toBe(1);
    expect(session.pids().lm).not.toBe(pid);
    const later = c.results.filter((r) => r.startMs >= secondAt);
    expect(wordErrorRate(second.text, later.map((r) => r.text).join(' ')).wer).toBeLessThanOrEqual(0.2);
    const pizza = later.flatMap((r) => r.words).find((w) => w.word === 'pizza');
    const ref = second.words!.find((w) => w.word === 'pizza')!;
    expect(Math.abs(pizza!.startMs - (secondAt + ref.startMs))).toBeLessThanOrEqual(300);
    expect(c.errors).toEqual([]);
  });

  it('drops the oldest audio when the recogniser falls behind, counts it, and keeps times right', async () => {
    const small = createPocketsphinxEngine({ log: quietLog, bufferSeconds: 1 });
    try {
      const c = collector();
      const session = small.open({ log: quietLog, phrases: [], ...c.callbacks });
      // Seven seconds at once into a one-second buffer: most of it cannot be kept.
      const a = readClipPcm(speechClip('wer-5'));
      const b = readClipPcm(speechClip('wer-3'));
      const burst = new Int16Array(a.length + b.length);
      burst.set(a);
      burst.set(b, a.length);
      await feed(session, burst, 0);
      const dropped = c.drops.reduce((x, y) => x + y, 0);
      expect(dropped).toBeGreaterThanOrEqual(250);
      expect(dropped).toBeLessThanOrEqual(burst.length / 160);
      await sleep(300);
      const clip = speechClip('wer-4');
      await feed(session, readClipPcm(clip), 10_000, 10);
      await session.end();
      const words = c.results.flatMap((r) => r.words).filter((w) => w.startMs >= 10_000);
      const late = words.find((w) => w.word === 'late');
      const ref = clip.words!.find((w) => w.word === 'late')!;
      expect(late).toBeDefined();
      expect(Math.abs(late!.startMs - (10_000 + ref.startMs))).toBeLessThanOrEqual(300);
    } finally {
      await small.shutdown();
    }
  });

  it('starts pocketsphinx itself as the child (bash hands it a real pipe)', async () => {
    const session = engine.open({ log: quietLog, phrases: [PHRASE], ...collector().callbacks }) as PocketsphinxSession;
    const { lm, kws } = session.pids();
    expect(lm).toBeGreaterThan(0);
    expect(kws).toBeGreaterThan(0);
    const { readFile } = await import('node:fs/promises');
    // bash execs pocketsphinx in place (on a loaded host that can take a while).
    await waitFor(async () => /^pocketsphinx/.test((await readFile(`/proc/${lm}/comm`, 'utf8')).trim()), 10_000, 'pocketsphinx exec');
    // Its only child is the `cat` that copies our socket into the pipe.
    const cat = await childPidOf(lm!);
    expect(cat === null || (await readFile(`/proc/${cat}/comm`, 'utf8')).trim() === 'cat').toBe(true);
    await session.end();
  });

  it('starts its spotter with exactly the arguments and front-end the phrase evaluation decodes with (spotter-args.ts)', async () => {
    const session = engine.open({ log: quietLog, phrases: [PHRASE], ...collector().callbacks }) as PocketsphinxSession;
    const { readFile } = await import('node:fs/promises');
    try {
      const cmdline = async () => (await readFile(`/proc/${session.pids().kws}/cmdline`, 'utf8')).split('\0').slice(0, -1);
      // bash execs pocketsphinx_continuous -infile /dev/fd/N, then the spotter's arguments.
      let argv: string[] = [];
      await waitFor(async () => (argv = await cmdline())[1] === '-infile', 10_000);
      const args = argv.slice(3);
      const kwsFile = args[args.indexOf('-kws') + 1]!;
      const featParams = args[args.indexOf('-featparams') + 1]!;
      const dir = mkdtempSync(join(tmpdir(), 'sg-spotter-args-'));
      try {
        const expected = prepareSpotter(SPOTTER_DEFAULTS, DEFAULT_MODEL_DIR, dir)(kwsFile);
        expect(args).toEqual(expected.map((a) => (a === join(dir, 'feat.params') ? featParams : a)));
        expect(await readFile(featParams, 'utf8')).toBe(await readFile(join(dir, 'feat.params'), 'utf8'));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      // One starting mean, the telephone one (pocketsphinx reads feat.params after the command line).
      expect((await readFile(featParams, 'utf8')).split('\n').filter((l) => l.startsWith('-cmninit'))).toEqual([`-cmninit ${TELEPHONE_CMN_INIT}`]);
    } finally {
      await session.end();
    }
  });
});

describe('spotter arguments', () => {
  it('change their fingerprint (the phrase evaluation\'s cache key) with every setting', () => {
    const base = spotterFingerprint(SPOTTER_DEFAULTS);
    expect(spotterFingerprint({ ...SPOTTER_DEFAULTS })).toBe(base);
    expect(spotterFingerprint({ ...SPOTTER_DEFAULTS, kwsPlp: 1e-20 })).not.toBe(base);
    expect(spotterFingerprint({ ...SPOTTER_DEFAULTS, cmnInit: null })).not.toBe(base);
    expect(spotterFingerprint({ ...SPOTTER_DEFAULTS, flags: ['-beam', '1e-80'] })).not.toBe(base);
  });

  it('append further flags (levers the phrase evaluation measures) after the front-end, and none by default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-spotter-args-'));
    try {
      const plain = prepareSpotter(SPOTTER_DEFAULTS, DEFAULT_MODEL_DIR, dir)('p.kws');
      const warped = prepareSpotter({ ...SPOTTER_DEFAULTS, flags: ['-warp_type', 'inverse_linear', '-warp_params', '1.1'] }, DEFAULT_MODEL_DIR, dir)('p.kws');
      expect(warped).toEqual([...plain, '-warp_type', 'inverse_linear', '-warp_params', '1.1']);
      expect(plain).not.toContain('-warp_type');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
