import { register } from "labc";

const wait = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** The benchmark's streams (W9) and job worker (W10). */
export class BenchWorker {
  /** `count` chunks of `size` bytes, the same buffer each time: what a file reader yields. */
  @register()
  async *benchChunks(size: number, count: number) {
    const chunk = Buffer.alloc(size, 7);
    for (let i = 0; i < count; i++) yield chunk;
  }

  /** `count` small items. */
  @register()
  async *benchItems(count: number) {
    for (let i = 0; i < count; i++) yield { i, label: "item" };
  }

  /** An item of a job: waits `ms`, as an instrument or a disk would, and answers. */
  @register({ idempotent: true })
  async benchWork(ms: number) {
    await wait(ms);
    return ms;
  }
}
