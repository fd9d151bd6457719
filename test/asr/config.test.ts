/** The remote engines' settings as loadConfig reads them: every mistake stops start-up with one line. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadConfig } from '../../src/gateway/config.js';
import { deepgramUrl } from '../../src/sinks/transcription/engines/remote/deepgram.js';

describe('remote speech engine configuration', () => {
  it('TRANSCRIPTION=deepgram needs DEEPGRAM_API_KEY, and the error does not echo anything secret', () => {
    expect(() => loadConfig({ TRANSCRIPTION: 'deepgram' })).toThrow(ConfigError);
    expect(() => loadConfig({ TRANSCRIPTION: 'deepgram' })).toThrow(/TRANSCRIPTION=deepgram needs DEEPGRAM_API_KEY/);
    const c = loadConfig({ TRANSCRIPTION: 'deepgram', DEEPGRAM_API_KEY: 'k' });
    expect(c.deepgramUrl).toBe('wss://api.deepgram.com/v1/listen');
    expect(c.asrReplaySeconds).toBe(10);
    expect(c.asrStallSeconds).toBe(10);
    // A remote service costs a socket per track, not a core: the default cap is not the core count.
    expect(c.transcriptionMaxStreams).toBe(1000);
  });

  it('DEEPGRAM_PARAMS passes options through but may not change how the audio is described', () => {
    const c = loadConfig({ TRANSCRIPTION: 'deepgram', DEEPGRAM_API_KEY: 'k', DEEPGRAM_PARAMS: 'model=nova-3&language=en&smart_format=true' });
    expect(deepgramUrl(c.deepgramUrl, c.deepgramParams)).toBe(
      'wss://api.deepgram.com/v1/listen?model=nova-3&language=en&smart_format=true&encoding=mulaw&sample_rate=8000&channels=1&interim_results=true',
    );
    for (const bad of ['encoding=linear16', 'sample_rate=16000', 'channels=2', 'model=x&interim_results=false']) {
      expect(() => loadConfig({ TRANSCRIPTION: 'deepgram', DEEPGRAM_API_KEY: 'k', DEEPGRAM_PARAMS: bad })).toThrow(/DEEPGRAM_PARAMS must not set/);
    }
    expect(() => loadConfig({ DEEPGRAM_PARAMS: 'a b=1' })).toThrow(/DEEPGRAM_PARAMS has a bad parameter name/);
  });

  it('URLs must be WebSocket URLs; the replay window and stall time are bounded', () => {
    expect(() => loadConfig({ DEEPGRAM_URL: 'https://api.deepgram.com/v1/listen' })).toThrow(/DEEPGRAM_URL must use ws or wss/);
    expect(() => loadConfig({ VOSK_URL: 'localhost:2700' })).toThrow(/VOSK_URL/);
    expect(loadConfig({ TRANSCRIPTION: 'vosk' }).voskUrl).toBe('ws://localhost:2700');
    expect(() => loadConfig({ ASR_REPLAY_SECONDS: '0' })).toThrow(/ASR_REPLAY_SECONDS must be between 1 and 120/);
    expect(() => loadConfig({ ASR_STALL_SECONDS: 'soon' })).toThrow(/ASR_STALL_SECONDS must be a whole number/);
  });
});
