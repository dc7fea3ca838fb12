/**
 * Timeouts for many requests with one timer: deadlines fall into slots of `resolution` ms and a
 * single interval, running only while something waits, fires the slots that have passed. Adding
 * and cancelling are O(1), and nothing allocates a timer per call.
 */
export interface Deadline {
  readonly slot: number;
  readonly fire: () => void;
}

export class DeadlineWheel {
  private readonly slots = new Map<number, Set<Deadline>>();
  private timer: NodeJS.Timeout | null = null;
  private count = 0;
  private swept = 0;

  constructor(private readonly resolution = 10) {}

  add(ms: number, fire: () => void): Deadline {
    if (this.count++ === 0) this.start();
    // Never a slot already swept: it would not fire.
    const slot = Math.max(Math.ceil((Date.now() + ms) / this.resolution), this.swept + 1);
    const deadline: Deadline = { slot, fire };
    let set = this.slots.get(slot);
    if (!set) this.slots.set(slot, (set = new Set()));
    set.add(deadline);
    return deadline;
  }

  cancel(deadline: Deadline): void {
    const set = this.slots.get(deadline.slot);
    if (set?.delete(deadline)) {
      if (set.size === 0) this.slots.delete(deadline.slot);
      if (--this.count === 0) this.stop();
    }
  }

  private start(): void {
    if (this.timer) return;
    this.swept = Math.floor(Date.now() / this.resolution);
    // unref: a pending request keeps its own socket referenced; the wheel never holds a process.
    this.timer = setInterval(() => this.sweep(), this.resolution).unref();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private sweep(): void {
    const now = Math.floor(Date.now() / this.resolution);
    for (let slot = this.swept + 1; slot <= now; slot++) {
      const set = this.slots.get(slot);
      if (!set) continue;
      this.slots.delete(slot);
      this.count -= set.size;
      for (const deadline of set) deadline.fire();
    }
    this.swept = now;
    if (this.count === 0) this.stop();
  }
}

/** The process's wheel for request timeouts. */
export const deadlines = new DeadlineWheel();
