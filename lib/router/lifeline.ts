/** How a peer looks from here, as heartbeats tell it. */
export type LifelineStatus = "alive" | "suspect" | "dead";

export interface LifelineOptions {
  /** Milliseconds between heartbeats. */
  intervalMs: number;
  /** Missed heartbeats before the peer is suspect, and before it is dead. */
  suspectAfter: number;
  deadAfter: number;
  /** Sends one heartbeat to the peer. */
  ping: () => void;
  /** Each change of status; "dead" comes once, and ends the lifeline. */
  onStatus: (status: LifelineStatus) => void;
  now?: () => number;
}

/**
 * Heartbeats on a link to another host: pings it every interval (with jitter, so that hosts
 * started together do not beat in step) and judges it by how long ago anything was heard from
 * it. It knows nothing of sockets: `ping` and `heard` connect it to one.
 */
export class Lifeline {
  status: LifelineStatus = "alive";
  lastHeard: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly options: LifelineOptions) {
    this.now = options.now ?? Date.now;
    this.lastHeard = this.now();
  }

  start(): void {
    this.heard();
    this.schedule();
  }

  /** Anything arrived from the peer: it lives. */
  heard(): void {
    this.lastHeard = this.now();
    if (this.status === "suspect") this.set("alive");
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    const jitter = 0.8 + Math.random() * 0.2;
    this.timer = setTimeout(() => this.beat(), this.options.intervalMs * jitter);
    this.timer.unref();
  }

  private beat(): void {
    const missed = (this.now() - this.lastHeard) / this.options.intervalMs;
    if (missed >= this.options.deadAfter) {
      this.stop();
      return this.set("dead");
    }
    if (missed >= this.options.suspectAfter && this.status === "alive") this.set("suspect");
    this.options.ping();
    this.schedule();
  }

  private set(status: LifelineStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.options.onStatus(status);
  }
}
