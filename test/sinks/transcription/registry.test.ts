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
    const session = engine.open({ log: quietLog, phrases: [], onResult: () => {}, onPhrase: () => {}, onDrop: () => {} });
    session.write(new Int16Array(160), 160, 0);
    await session.end();
    await engine.shutdown();
  });
});
