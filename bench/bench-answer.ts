import { subscribe } from "labc";

/** The benchmark's reqpub subscriber (W8): answers what it is sent. */
export class BenchAnswer {
  @subscribe("bench.ask")
  ask(value: unknown) {
    return value;
  }
}
