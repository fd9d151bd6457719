import { readdirSync, readFileSync } from 'node:fs';
import { decodeSet, defaultRunDir } from './bench/lib/phrase-scores.js';
import { phraseSet } from './bench/lib/phrase-set.js';
const set = phraseSet();
const runDir = '/tmp/pt-lmcheck';
const { fileURLToPath } = await import('node:url');
await decodeSet(set, { audioDir: fileURLToPath(new URL('./bench/out/phrase-set/', import.meta.url)), runDir, chunks: 8, firstChunks: 1, halves: ['heldout'], parallel: 1, lm: true });
for (const f of readdirSync(runDir)) {
  const a = readFileSync(`${runDir}/${f}`, 'utf8');
  const b = readFileSync(`${defaultRunDir()}/${f}`, 'utf8');
  console.log(f, a === b ? 'identical' : 'DIFFERENT');
}
