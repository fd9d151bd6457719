import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { isPocketsphinxInstalled } from '../../../src/sinks/transcription/engines/pocketsphinx.js';
import { createSpeechEngine, defaultEngineName } from '../../../src/sinks/transcription/engines/registry.js';
import { quietLog } from './helpers.js';

describe('engine registry', () => {
  it('defaults to pocketsphinx exactly when it can run', () => {
    expect(defaultEngineName()).toBe(isPocketsphinxInstalled() ? 'pocketsphinx' : 'none');
  });

  it('names TRANSCRIPTION when the engine is unknown or missing', () => {
    expect(() => createSpeechEngine('whisper', { log: quietLog })).toThrow(ConfigError);
    expect(() => createSpeechEngine('whisper', { log: quietLog })).toThrow(/TRANSCRIPTION must be one of pocketsphinx, deepgram, vosk, none/);
    expect(() =>
      createSpeechEngine('pocketsphinx', { log: quietLog, pocketsphinx: { modelDir: '/nonexistent' } }),
    ).toThrow(/TRANSCRIPTION=pocketsphinx/);
  });

  it('makes a none engine whose sessions take audio and report nothing', async () => {
    const engine = createSpeechEngine('none', { log: quietLog });
    expect(engine.name).toBe('none');
    const calls: string[] = [];
    const session = engine.open({
      log: quietLog,
      phrases: ['hello'],
      onResult: () => calls.push('result'),
      onPhrase: () => calls.push('phrase'),
      onHole: () => calls.push('hole'),
      onDrop: () => calls.push('drop'),
      onRestart: () => calls.push('restart'),
      onError: () => calls.push('error'),
    });
    // One second of a loud square wave: speech-like energy an engine would answer.
    const pcm = new Int16Array(160).map((_, i) => (i % 16 < 8 ? 12000 : -12000));
    for (let t = 0; t < 1000; t += 20) session.write(pcm, 160, t);
    // end() resolves after the engine delivered its last results: nothing may arrive later.
    await session.end();
    await engine.shutdown();
    expect(calls).toEqual([]);
  });
});
