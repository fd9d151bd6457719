/**
 * Small statistics and reporting helpers shared by the benches: mean ± tolerance over repeated
 * rounds (undici's printResults style), percentiles, the machine line and Markdown tables.
 */
import { cpus, availableParallelism, totalmem, release } from 'node:os';
import { readFileSync } from 'node:fs';

/** Two-sided 95 % Student t values for 1..30 degrees of freedom (then ~1.96). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export interface Summary {
  /** Mean of the rounds. */
  mean: number;
  /** Half-width of the 95 % confidence interval of the mean, as a percentage of the mean. */
  tolerancePct: number;
  min: number;
  max: number;
  rounds: number;
}

export function summarize(values: readonly number[]): Summary {
  const n = values.length;
  if (n === 0) return { mean: NaN, tolerancePct: NaN, min: NaN, max: NaN, rounds: 0 };
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  const sd = n > 1 ? Math.sqrt(sq / (n - 1)) : 0;
  const t = n > 1 ? (T95[Math.min(n - 1, T95.length) - 1] ?? 1.96) : 0;
  return { mean, tolerancePct: mean === 0 ? 0 : ((t * sd) / Math.sqrt(n) / mean) * 100, min, max, rounds: n };
}

/** Value at quantile q (0..1) of an unsorted sample (nearest-rank). */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx]!;
}

/** Middle value of a sample (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  /** Whether `perf` can sample this machine (for profiles). */
  virtualised: boolean;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  let model = c[0]?.model ?? 'unknown';
  // Some hypervisors report a bare family name; /proc/cpuinfo sometimes says more.
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m && m[1]!.length > model.length) model = m[1]!.trim();
  } catch {
    // not Linux; os.cpus() is all we have
  }
  let virtualised = false;
  try {
    virtualised = /\bhypervisor\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    // unknown
  }
  return {
    cpuModel: model.trim(),
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    virtualised,
  };
}

export function machineLine(m: MachineInfo = machineInfo()): string {
  return `${m.cores} cores, ${m.cpuModel}${m.virtualised ? ' (KVM guest)' : ''}, ${m.memoryGiB} GiB RAM, Node ${m.node}, Linux ${m.kernel}`;
}

/** A GitHub-flavoured Markdown table; numbers are printed as given (format them first). */
export function mdTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[], align?: readonly ('l' | 'r')[]): string {
  const sep = headers.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : ':---'));
  const line = (cells: readonly (string | number)[]) => `| ${cells.map((c) => String(c)).join(' | ')} |`;
  return [line(headers), `|${sep.join('|')}|`, ...rows.map(line)].join('\n');
}

/** Fixed decimals, or '–' for a missing value. */
export function fmt(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v.toFixed(digits);
}

export function fmtInt(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}
