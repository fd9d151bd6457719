import { describe, expect, it } from 'vitest';
import { classify } from '../../src/conditions/actions.js';
import { TwilioApiError, TwilioResponseError, TwilioTransportError } from '../../src/twilio/errors.js';

const api = (status: number, twilioCode: number | null) => new TwilioApiError('UpdateConference', status, { twilioCode, message: 'x', moreInfo: null }, 1);

describe('classify', () => {
  it.each([
    [400, null, 'already-ended'],
    [400, 20001, 'already-ended'],
    [400, 16022, 'already-ended'],
    [409, 21220, 'already-ended'],
    [404, 16022, 'already-ended'],
    [404, 20404, 'not-found'],
    [404, null, 'not-found'],
    [400, 20404, 'not-found'],
    [401, 20003, 'failed'],
    [429, 20429, 'failed'],
    [503, 20503, 'failed'],
  ] as const)('maps HTTP %i with Twilio code %s to %s', (status, code, result) => {
    expect(classify(api(status, code))).toEqual({ result, httpStatus: status, twilioCode: code, error: api(status, code).message });
  });

  it('maps transport and response failures, and anything else, to failed', () => {
    expect(classify(new TwilioTransportError('UpdateConference', 'timeout', null, true, 4)).result).toBe('failed');
    expect(classify(new TwilioResponseError('UpdateConference', 200, 'body is not JSON', 1))).toMatchObject({ result: 'failed', httpStatus: 200 });
    expect(classify(new Error('boom'))).toEqual({ result: 'failed', httpStatus: null, twilioCode: null, error: 'boom' });
  });
});
