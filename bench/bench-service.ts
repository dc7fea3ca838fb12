import { register, subscribe } from "labc";

/** The benchmark's subscriber: counts what arrives on bench.tick. */
export class BenchSubscriber {
  private received = 0;

  @subscribe("bench.tick")
  tick() {
    this.received++;
  }

  @register()
  benchCount() {
    return this.received;
  }
}
