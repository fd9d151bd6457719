/**
 * A tiny, exact "language" for the speech-service stand-ins: each word is a tone burst whose
 * pitch names it, words are separated by short pauses, sentences by long ones. The stand-ins
 * recognise it from the audio they actually receive (energy → word boundaries, zero crossings
 * → pitch), so a lost, doubled or shifted stretch of audio changes the words or their times,
 * exactly as it would with a real recogniser, and a test knows the right answer in advance.
 */
import { encodeMulaw } from '../../src/twilio/mulaw.js';

export const VOCABULARY: readonly { word: string; hz: number }[] = [
  { word: 'alpha', hz: 350 },
  { word: 'bravo', hz: 550 },
  { word: 'charlie', hz: 750 },
  { word: 'delta', hz: 950 },
  { word: 'echo', hz: 1150 },
  { word: 'foxtrot', hz: 1350 },
  { word: 'golf', hz: 1550 },
  { word: 'hotel', hz: 1750 },
];

const WORD_MS = 300;
const PAUSE_MS = 200;
const SENTENCE_PAUSE_MS = 800;

export interface PlannedWord {
  word: string;
  /** ms from the start of the call's audio. */
  startMs: number;
  endMs: number;
}

/** Sentences of vocabulary words (`...`: a second of silence) as 8 kHz mu-law, in whole 20 ms frames, and the words' times. */
export function toneSpeech(sentences: readonly (readonly string[])[], leadMs = 400): { mulaw: Uint8Array; words: PlannedWord[] } {
  const pcm: number[] = new Array<number>(leadMs * 8).fill(0);
  const words: PlannedWord[] = [];
  for (const sentence of sentences) {
    sentence.forEach((word, i) => {
      if (word === '...') {
        // A second of silence, not a word.
        for (let n = 0; n < 8000; n++) pcm.push(0);
        return;
      }
      const v = VOCABULARY.find((w) => w.word === word);
      if (v === undefined) throw new Error(`not in the vocabulary: ${word}`);
      const start = pcm.length;
      for (let n = 0; n < WORD_MS * 8; n++) pcm.push(Math.round(8000 * Math.sin((2 * Math.PI * v.hz * n) / 8000)));
      words.push({ word, startMs: start / 8, endMs: pcm.length / 8 });
      const pause = i === sentence.length - 1 ? SENTENCE_PAUSE_MS : PAUSE_MS;
      for (let n = 0; n < pause * 8; n++) pcm.push(0);
    });
  }
  while (pcm.length % 160 !== 0) pcm.push(0);
  return { mulaw: encodeMulaw(Int16Array.from(pcm)), words };
}

/** A recognised word: seconds on the stream the recogniser was fed. */
export interface HeardWord {
  word: string;
  start: number;
  end: number;
}

const BLOCK = 80; // 10 ms
const ENERGY_THRESHOLD = 1000 * 1000; // mean square of a 10 ms block
/** Silence after a word that ends an utterance (an endpoint). */
export const ENDPOINT_MS = 400;

/**
 * The recogniser: feed it 16-bit samples; it reports words as they end and utterance endpoints.
 * `partial()` is the current utterance so far, including a word still being spoken.
 */
export class ToneRecognizer {
  /** Samples consumed. */
  pos = 0;
  #block = new Int16Array(BLOCK);
  #fill = 0;
  #wordStart = -1;
  #crossings = 0;
  #prevSign = 0;
  #silentBlocks = 0;
  /** Words of the utterance in progress (complete words). */
  utterance: HeardWord[] = [];

  constructor(
    readonly onWord: (w: HeardWord) => void = () => {},
    readonly onEndpoint: (words: HeardWord[], atSec: number) => void = () => {},
  ) {}

  feed(pcm: Int16Array): void {
    for (let i = 0; i < pcm.length; i++) {
      this.#block[this.#fill++] = pcm[i]!;
      if (this.#fill === BLOCK) {
        this.#fill = 0;
        this.#processBlock();
      }
    }
  }

  /** Ends a word being spoken and the utterance (stream end, Finalize). Returns the utterance. */
  flush(): HeardWord[] {
    if (this.#wordStart >= 0) this.#endWord(this.pos);
    const words = this.utterance;
    this.utterance = [];
    this.#silentBlocks = 0;
    return words;
  }

  partial(): string {
    const words = this.utterance.map((w) => w.word);
    if (this.#wordStart >= 0 && this.pos - this.#wordStart >= 800) words.push(this.#guess(this.pos));
    return words.join(' ');
  }

  #processBlock(): void {
    let energy = 0;
    const b = this.#block;
    for (let i = 0; i < BLOCK; i++) energy += b[i]! * b[i]!;
    const voiced = energy / BLOCK > ENERGY_THRESHOLD;
    const blockStart = this.pos;
    this.pos += BLOCK;
    if (voiced) {
      if (this.#wordStart < 0) {
        this.#wordStart = blockStart;
        this.#crossings = 0;
        this.#prevSign = 0;
      }
      for (let i = 0; i < BLOCK; i++) {
        const sign = b[i]! > 0 ? 1 : b[i]! < 0 ? -1 : 0;
        if (sign !== 0 && this.#prevSign !== 0 && sign !== this.#prevSign) this.#crossings++;
        if (sign !== 0) this.#prevSign = sign;
      }
      this.#silentBlocks = 0;
      return;
    }
    if (this.#wordStart >= 0) this.#endWord(blockStart);
    this.#silentBlocks++;
    if (this.utterance.length > 0 && this.#silentBlocks * 10 >= ENDPOINT_MS) {
      const words = this.utterance;
      this.utterance = [];
      this.onEndpoint(words, this.pos / 8000);
    }
  }

  #guess(end: number): string {
    const hz = this.#crossings / 2 / ((end - this.#wordStart) / 8000);
    let best = VOCABULARY[0]!;
    for (const v of VOCABULARY) if (Math.abs(v.hz - hz) < Math.abs(best.hz - hz)) best = v;
    return best.word;
  }

  #endWord(end: number): void {
    // Shorter than 50 ms is a click, not a word.
    if (end - this.#wordStart >= 400) {
      const w: HeardWord = { word: this.#guess(end), start: this.#wordStart / 8000, end: end / 8000 };
      this.utterance.push(w);
      this.onWord(w);
    }
    this.#wordStart = -1;
  }
}
