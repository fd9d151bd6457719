/**
 * Hands each decoded frame to every sink of a stream, in order, synchronously (as pino's
 * multistream loops over its destinations). A sink that throws is isolated: counted, logged
 * once, dropped from the loop; the stream and the other sinks go on.
 */
import type { Logger } from 'pino';
import type { MediaFrame, Sink, SinkStats, WireStats } from '../../sinks/sink.js';
import type { CloseReason } from '../../core/stream.js';

export class FanOut {
  /** Sinks still taking frames. */
  #live: Sink[];
  #stats: SinkStats[];
  /** Every sink ever opened, so a failed one is still closed. */
  readonly #all: Sink[];
  /** The stream's logger, fetched only when there is something to log (it is made lazily). */
  readonly #log: () => Logger;

  constructor(sinks: { sink: Sink; stats: SinkStats }[], log: () => Logger) {
    this.#live = sinks.map((s) => s.sink);
    this.#stats = sinks.map((s) => s.stats);
    this.#all = this.#live.slice();
    this.#log = log;
  }

  get size(): number {
    return this.#live.length;
  }

  accept(frame: MediaFrame): void {
    let sinks = this.#live;
    for (let i = 0; i < sinks.length; i++) {
      try {
        sinks[i]!.accept(frame);
      } catch (err) {
        this.#isolate(i, err);
        sinks = this.#live;
        i--;
      }
    }
  }

  #isolate(i: number, err: unknown): void {
    const sink = this.#live[i]!;
    this.#stats[i]!.errors++;
    this.#log().error({ err, sink: sink.name }, 'sink threw; isolated for the rest of the stream');
    // Copy-on-write so a loop in progress elsewhere never sees a shifted array.
    this.#live = this.#live.filter((_, j) => j !== i);
    this.#stats = this.#stats.filter((_, j) => j !== i);
  }

  /** Closes every sink (failed ones too); never rejects. */
  async close(reason: CloseReason, wire?: WireStats): Promise<void> {
    this.#live = [];
    await Promise.all(
      this.#all.map(async (sink) => {
        try {
          await sink.close(reason, wire);
        } catch (err) {
          this.#log().error({ err, sink: sink.name }, 'sink failed to close');
        }
      }),
    );
  }
}
