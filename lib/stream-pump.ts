import { BadArgumentsError } from "./errors.js";
import { runWith, type CallContext } from "./context.js";
import { warn } from "./log.js";
import type { Cancellable, StreamOutlet } from "./net/peer-requests.js";

/**
 * Serves a stream a function returned: takes an item from it only while the reader has granted
 * credit for one (and its connection is not congested), so a slow reader slows the producer
 * down instead of filling memory; ends the producer (its `finally` blocks run) when the reader
 * stops reading, cancels, or goes away.
 */
export class StreamPump implements Cancellable {
  private wake: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly source: AsyncIterable<unknown> | Iterator<unknown>,
    private readonly outlet: StreamOutlet,
    private readonly call: CallContext,
    private credits: number,
  ) {}

  cancel(reason?: unknown): void {
    this.stopped = true;
    this.call.cancel(reason);
    this.wakeUp();
  }

  credit(n: number): void {
    this.credits += n;
    this.wakeUp();
  }

  async run(): Promise<void> {
    const source = this.source;
    const iterator = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as Iterator<unknown>);
    let finished = false;
    let answered = false;
    let sent = 0;
    try {
      for (;;) {
        while (!this.over && (this.credits === 0 || this.outlet.congested)) {
          if (this.credits === 0) await new Promise<void>((done) => (this.wake = done));
          else await this.outlet.drain();
        }
        if (this.over) return;
        // Each step runs with the call's context, as a called function does: a generator may
        // read `labc.context()` at its start (its first step).
        const step = await (runWith(this.call, iterator.next, iterator, []) as Promise<IteratorResult<unknown>>);
        if (step.done) {
          finished = true;
          return;
        }
        if (this.over) return;
        try {
          this.outlet.item(step.value);
        } catch (error) {
          throw error instanceof BadArgumentsError ? new BadArgumentsError(`${this.call.functionName}: item ${sent}: ${error.message}`) : error;
        }
        sent++;
        this.credits--;
      }
    } catch (error) {
      finished ||= !(error instanceof BadArgumentsError); // a producer that threw has ended
      if (!this.over) {
        answered = true;
        this.outlet.fail(error);
      }
    } finally {
      // Also when the reader cancelled: the request is answered, which frees it on this side.
      if (!answered && !this.outlet.closed) this.outlet.end();
      if (!finished) {
        try {
          await iterator.return?.();
        } catch (error) {
          warn(`stream of ${this.call.functionName} failed while it was ended: ${(error as Error).message}`);
        }
      }
      this.call.finish();
    }
  }

  private get over(): boolean {
    return this.stopped || this.outlet.closed;
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
