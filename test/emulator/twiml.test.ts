import { describe, expect, it } from 'vitest';
import { parseTwiml, TwimlError } from '../../src/emulator/twiml.js';

const BASE = 'https://app.example.com/voice/start';

function code(fn: () => unknown): number | null {
  try {
    fn();
    return null;
  } catch (err) {
    return err instanceof TwimlError ? err.code : -1;
  }
}

describe('TwiML documents', () => {
  it('turns every emulated verb into a step, in order, with its attributes and relative URLs resolved', () => {
    const verbs = parseTwiml(
      `<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Start><Stream name="rec" url="/media" track="both_tracks" statusCallback="/status"><Parameter name="t" value="a&amp;b"/></Stream></Start>
  <Say loop="2">Hello   there world</Say>
  <Play loop="0">/hold.wav</Play>
  <Pause length="3"/>
  <Connect action="/after" method="GET"><Stream url="wss://bot.example.com/ws"/></Connect>
  <Dial action="/dialled"><Conference statusCallback="https://gw.example.com/conf" statusCallbackEvent="start end join leave" endConferenceOnExit="true" startConferenceOnEnter="false" participantLabel="alice">room-1</Conference></Dial>
  <Stop><Stream name="rec"/></Stop>
  <Gather/>
  <Redirect method="GET">next</Redirect>
  <Hangup/>
</Response>`,
      BASE,
    );
    expect(verbs).toEqual([
      {
        verb: 'Start',
        stream: {
          url: 'wss://app.example.com/media',
          name: 'rec',
          track: 'both_tracks',
          statusCallback: 'https://app.example.com/status',
          statusCallbackMethod: 'POST',
          parameters: { t: 'a&b' },
        },
      },
      { verb: 'Say', text: 'Hello   there world', loop: 2 },
      { verb: 'Play', url: 'https://app.example.com/hold.wav', loop: 0 },
      { verb: 'Pause', seconds: 3 },
      {
        verb: 'Connect',
        stream: { url: 'wss://bot.example.com/ws', name: null, track: 'inbound_track', statusCallback: null, statusCallbackMethod: 'POST', parameters: {} },
        action: 'https://app.example.com/after',
        method: 'GET',
      },
      {
        verb: 'Dial',
        conference: {
          friendlyName: 'room-1',
          statusCallback: 'https://gw.example.com/conf',
          statusCallbackMethod: 'POST',
          statusCallbackEvent: 'start end join leave',
          startConferenceOnEnter: false,
          endConferenceOnExit: true,
          muted: false,
          label: 'alice',
        },
        action: 'https://app.example.com/dialled',
        method: 'POST',
      },
      { verb: 'Stop', name: 'rec' },
      { verb: 'Skipped', detail: '<Gather> is not emulated' },
      { verb: 'Redirect', url: 'https://app.example.com/voice/next', method: 'GET' },
      { verb: 'Hangup' },
    ]);
  });

  it('refuses what Twilio cannot run: 12100 for a malformed document, a DOCTYPE or another root; 12200 for a bad verb', () => {
    expect(code(() => parseTwiml('<Response><Say>x</Response>', BASE))).toBe(12100);
    expect(code(() => parseTwiml('<!DOCTYPE r [<!ENTITY a "aaaa">]><Response><Say>&a;</Say></Response>', BASE))).toBe(12100);
    expect(code(() => parseTwiml('<Html><Say>x</Say></Html>', BASE))).toBe(12100);
    expect(code(() => parseTwiml('<Response/>', BASE))).toBeNull();
    expect(code(() => parseTwiml('<Response><Start><Stream/></Start></Response>', BASE))).toBe(12200);
    expect(code(() => parseTwiml(`<Response><Start><Stream url="wss://a/b"><Parameter name="n" value="${'v'.repeat(499)}"/></Stream></Start></Response>`, BASE))).toBe(12200);
    expect(code(() => parseTwiml(`<Response><Start><Stream url="wss://a/b"><Parameter name="n" value="${'v'.repeat(497)}"/></Stream></Start></Response>`, BASE))).toBeNull();
    expect(code(() => parseTwiml('<Response><Redirect/></Response>', BASE))).toBe(12200);
    expect(code(() => parseTwiml(`<Response>${'<Hangup/>'.repeat(1001)}</Response>`, BASE))).toBe(12200);
  });
});
