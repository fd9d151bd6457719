import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  STREAM_TOKEN_LENGTH,
  STREAM_TOKEN_PARAMETER,
  createStreamToken,
  deriveStreamTokenSecret,
  verifyStreamToken,
} from '../../src/twilio/stream-token.js';

const CALL = `CA${'1'.repeat(32)}`;
const OTHER_CALL = `CA${'2'.repeat(32)}`;
const CONF = `CF${'3'.repeat(32)}`;
const OTHER_CONF = `CF${'4'.repeat(32)}`;

describe('stream token', () => {
  const secret = deriveStreamTokenSecret('auth-token-A');

  it('is carried in the sgToken parameter', () => {
    expect(STREAM_TOKEN_PARAMETER).toBe('sgToken');
  });

  it('is 32 base64url characters', () => {
    const token = createStreamToken(secret, CALL, CONF);
    expect(token).toHaveLength(STREAM_TOKEN_LENGTH);
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('verifies for the call (and conference) it was made for', () => {
    expect(verifyStreamToken(secret, createStreamToken(secret, CALL), CALL)).toBe(true);
    expect(verifyStreamToken(secret, createStreamToken(secret, CALL, CONF), CALL, CONF)).toBe(true);
  });

  it('fails for another call, another conference, or a conference added or dropped', () => {
    const token = createStreamToken(secret, CALL, CONF);
    expect(verifyStreamToken(secret, token, OTHER_CALL, CONF)).toBe(false);
    expect(verifyStreamToken(secret, token, CALL, OTHER_CONF)).toBe(false);
    expect(verifyStreamToken(secret, token, CALL)).toBe(false);
    expect(verifyStreamToken(secret, createStreamToken(secret, CALL), CALL, CONF)).toBe(false);
  });

  it('fails under another secret', () => {
    const token = createStreamToken(secret, CALL);
    expect(verifyStreamToken(deriveStreamTokenSecret('auth-token-B'), token, CALL)).toBe(false);
  });

  it('fails when missing, empty, truncated, too long or tampered', () => {
    const token = createStreamToken(secret, CALL);
    expect(verifyStreamToken(secret, undefined, CALL)).toBe(false);
    expect(verifyStreamToken(secret, null, CALL)).toBe(false);
    expect(verifyStreamToken(secret, '', CALL)).toBe(false);
    expect(verifyStreamToken(secret, token.slice(0, -1), CALL)).toBe(false);
    expect(verifyStreamToken(secret, `${token}A`, CALL)).toBe(false);
    const flipped = (token[0] === 'A' ? 'B' : 'A') + token.slice(1);
    expect(verifyStreamToken(secret, flipped, CALL)).toBe(false);
    // Same char count, more bytes: must not throw in timingSafeEqual.
    expect(verifyStreamToken(secret, 'é'.repeat(STREAM_TOKEN_LENGTH), CALL)).toBe(false);
  });

  it('never verifies a token for a different call (property)', () => {
    const sid = fc.stringMatching(/^CA[0-9a-f]{32}$/);
    fc.assert(
      fc.property(sid, sid, (a, b) => {
        fc.pre(a !== b);
        const token = createStreamToken(secret, a);
        expect(verifyStreamToken(secret, token, a)).toBe(true);
        expect(verifyStreamToken(secret, token, b)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe('deriveStreamTokenSecret', () => {
  it('derives the same 32-byte secret from the same auth token (instances agree)', () => {
    const a = deriveStreamTokenSecret('shared-auth-token');
    const b = deriveStreamTokenSecret('shared-auth-token');
    expect(a).toHaveLength(32);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(deriveStreamTokenSecret('another-token'))).toBe(false);
  });

  it('is not the auth token itself', () => {
    expect(deriveStreamTokenSecret('shared-auth-token').toString('utf8')).not.toContain('shared-auth-token');
  });

  it('without an auth token, is random per process but stable within it', () => {
    const a = deriveStreamTokenSecret(undefined);
    expect(a).toHaveLength(32);
    expect(deriveStreamTokenSecret('').equals(a)).toBe(true);
    expect(a.equals(deriveStreamTokenSecret('x'))).toBe(false);
    const token = createStreamToken(a, CALL);
    expect(verifyStreamToken(deriveStreamTokenSecret(undefined), token, CALL)).toBe(true);
  });
});
