import { describe, expect, it } from 'vitest';
import { findPhrase, normalizeText } from '../../src/conditions/match.js';

describe('normalizeText', () => {
  it('lower-cases, drops punctuation and apostrophes, collapses spaces and pads', () => {
    expect(normalizeText('  OK,   End the   CALL!! ')).toBe(' ok end the call ');
    expect(normalizeText("Don't stop")).toBe(' dont stop ');
    expect(normalizeText('Don’t stop')).toBe(' dont stop ');
    expect(normalizeText('Grüße, Zoë')).toBe(' grüße zoë ');
    expect(normalizeText('?!…')).toBe('');
  });
});

describe('findPhrase', () => {
  const phrases = ['end the call', 'goodbye everyone'].map(normalizeText);

  it('matches on word boundaries, ignoring case and punctuation', () => {
    expect(findPhrase(normalizeText('Right. END the call, please.'), phrases)).toBe(0);
    expect(findPhrase(normalizeText('well... goodbye, everyone!'), phrases)).toBe(1);
  });

  it('does not match inside a longer word', () => {
    expect(findPhrase(normalizeText('we will end the caller list'), phrases)).toBe(-1);
    expect(findPhrase(normalizeText('send the call'), phrases)).toBe(-1);
  });

  it('does not match empty text', () => {
    expect(findPhrase('', phrases)).toBe(-1);
  });
});
