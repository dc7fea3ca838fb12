import type { RepBody } from "../wire/message.js";

/** What a stream's reader tells the side that sends it items. */
export interface StreamSource {
  /** `n` more items may be sent. */
  grant(n: number): void;
  /** The reader stops: the producer is ended. */
  cancel(): void;
}

type Reader<T> = { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void };

const DONE: IteratorResult<never> = Object.freeze({ value: undefined, done: true });

/**
 * The items of a remote function's stream, as `labc.stream()` returns them: an async iterator
 * read with `for await`. The call is made on the first `next()`. At most `window` items are on
 * their way or waiting to be read at any time: the reader grants credit for more as it reads,
 * so a slow reader slows the producer. `break` (or `return()`) ends the producer.
 */
export class ItemStream<T = unknown> implements AsyncIterableIterator<T> {
  /** Whether the function returned a stream (known once its first item or its end arrived);
   * false when it returned one value, which is then the only item. */
  streamed = false;
  private items: unknown[] = [];
  private head = 0;
  private readers: Reader<T>[] = [];
  private state: "new" | "open" | "ended" | "failed" = "new";
  private failure: unknown;
  private source: StreamSource | undefined;
  /** The reader stopped before the call was made: the producer is ended once it is. */
  private abandoned = false;
  private read = 0;

  constructor(
    private readonly open: (stream: ItemStream<T>) => Promise<StreamSource>,
    /** Items the producer may send ahead of the reader. */
    readonly window: number,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.state === "new") this.start();
    if (this.head < this.items.length) return Promise.resolve(this.take());
    if (this.state === "ended") return Promise.resolve(DONE);
    if (this.state === "failed") {
      this.state = "ended";
      return Promise.reject(this.failure);
    }
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  /** Stops reading: the producer is ended, what arrived and was not read is dropped. */
  return(): Promise<IteratorResult<T>> {
    if (this.state === "open") {
      if (this.source) this.source.cancel();
      else this.abandoned = true;
    }
    this.finish("ended");
    this.items = [];
    this.head = 0;
    return Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    void this.return();
    return Promise.reject(error);
  }

  /** An item arrived. */
  push(value: unknown): void {
    if (this.state !== "open") return;
    this.streamed = true;
    this.items.push(value);
    const reader = this.readers.shift();
    if (reader) reader.resolve(this.take());
  }

  /** The answer that ends the call: the end of a stream, or the one value of a function that
   * returned a value. */
  end(body: RepBody): void {
    if (this.state !== "open") return;
    if (!body.done) this.items.push(body.v);
    else this.streamed = true;
    this.finish("ended");
  }

  fail(error: unknown): void {
    if (this.state !== "open" && this.state !== "new") return;
    this.failure = error;
    this.finish("failed");
  }

  private start(): void {
    this.state = "open";
    this.open(this).then(
      (source) => {
        if (this.abandoned) source.cancel();
        else this.source = source;
      },
      (error) => this.fail(error),
    );
  }

  private take(): IteratorResult<T> {
    const value = this.items[this.head] as T;
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    // Credit goes back in batches of half the window: one small message per many items.
    if (++this.read % Math.max(1, this.window >> 1) === 0 && this.state === "open") this.source?.grant(Math.max(1, this.window >> 1));
    return { value, done: false };
  }

  private finish(state: "ended" | "failed"): void {
    this.state = state;
    // Readers waiting get what is left, then the end (or the failure, once).
    while (this.readers.length && this.head < this.items.length) this.readers.shift()!.resolve(this.take());
    for (const reader of this.readers.splice(0)) {
      if (this.state === "failed") {
        this.state = "ended";
        reader.reject(this.failure);
      } else reader.resolve(DONE);
    }
  }
}
