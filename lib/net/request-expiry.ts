import { nowMs } from "../clock.js";

/**
 * Request timeouts at the cost of a clock read and a comparison per request: no timer, no entry
 * in a set, no closure. Each holder of requests (a Connection) keeps the earliest deadline among
 * them; one timer, armed for the earliest of all holders, asks the holders whose deadline came to
 * time their requests out and say their next one.
 *
 * A holder's `nextExpiry` may be earlier than its true earliest deadline (the request it belonged
 * to was answered since): the holder is then asked once for nothing and says its real next one.
 * Answered requests are forgotten at once: nothing is kept for them until their deadline.
 */
export interface Expiring {
  /** The earliest deadline among its requests (`nowMs()`), or Infinity; never later than the true one. */
  readonly nextExpiry: number;
  /** Times out the requests due at `now` and sets `nextExpiry` anew. */
  expire(now: number): void;
}

/** A deadline this close to the armed one is served by the same firing. */
const RESOLUTION_MS = 10;

export class RequestExpiry {
  private readonly holders = new Set<Expiring>();
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;

  /** `holder` has a new, earlier `nextExpiry`. */
  watch(holder: Expiring): void {
    this.holders.add(holder);
    if (holder.nextExpiry < this.armedFor - RESOLUTION_MS) this.arm(holder.nextExpiry);
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = at;
    // unref: a waiting request keeps its own socket referenced; this timer never holds a process.
    this.timer = setTimeout(this.fire, Math.max(0, at - nowMs())).unref();
  }

  // In a turn of the event loop timers run before reads: a process that kept its loop busy past
  // a deadline (a script's long synchronous loop) has not yet read answers that came in time,
  // and would time them out. The verdict waits for this turn's reads.
  private readonly fire = (): void => {
    this.timer = null;
    this.armedFor = Infinity;
    // Not unref'd: with only unref'd immediates the loop's poll waits for I/O or a timer first.
    setImmediate(this.expireDue);
  };

  private readonly expireDue = (): void => {
    // The timer's clock may be a little behind this one: what is not due yet arms it again.
    const now = nowMs();
    let soonest = Infinity;
    for (const holder of this.holders) {
      if (holder.nextExpiry <= now) holder.expire(now);
      if (holder.nextExpiry === Infinity) this.holders.delete(holder);
      else soonest = Math.min(soonest, holder.nextExpiry);
    }
    if (soonest !== Infinity) this.arm(soonest);
  };
}

/** The process's request timeouts. */
export const requestExpiry = new RequestExpiry();
