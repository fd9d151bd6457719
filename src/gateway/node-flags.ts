/**
 * V8 flags the gateway runs with: package.json's `start` and `demo`, the Dockerfile's
 * ENTRYPOINT, the cluster's workers (cluster.ts adds them to `execArgv`) and the benches'
 * gateway children (bench/ingest.bench.ts). test/gateway/node-flags.test.ts keeps those in step.
 *
 * `--max-semi-space-size=4` (MiB): V8 grows the young generation while much of it survives a
 * scavenge, up to 16 MiB a semi-space on 64-bit, and a gateway with hundreds of streams keeps it
 * there (streams' buffers and promises in flight survive). Then it scavenges ~12 MiB every
 * ~0.8 s, 3-15 ms each, on the loop that reads every stream's frames, and the young generation
 * alone holds ~48 MiB. Capped at 4 MiB, a scavenge is shorter and the young generation smaller:
 * bench/RESULTS.md "V8 young generation" has the interleaved runs (RSS per stream about a third
 * lower at every level; two-track lag max 4.6-5.6 ms against 10.8-36 ms at N=375).
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** `execArgv` plus each of GATEWAY_NODE_FLAGS whose flag it does not already set (an operator's own value wins). */
export function withGatewayNodeFlags(execArgv: readonly string[]): string[] {
  const name = (flag: string) => flag.split('=')[0]!.replace(/_/g, '-');
  const set = new Set(execArgv.map(name));
  return [...execArgv, ...GATEWAY_NODE_FLAGS.filter((f) => !set.has(name(f)))];
}
