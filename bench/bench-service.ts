import { register, subscribe } from "labc";

/** The benchmark's subscriber: counts what arrives on bench.tick, and when the last did. */
export class BenchSubscriber {
  private received = 0;
  private lastAt = 0;

  @subscribe("bench.tick")
  tick() {
    this.received++;
    this.lastAt = performance.timeOrigin + performance.now();
  }

  @register()
  benchCount() {
    return [this.received, this.lastAt];
  }
}
