/** An incoming request being served: the peer may cancel it, or grant a stream more credit. */
export interface Cancellable {
  cancel(reason?: unknown): void;
  credit?(n: number): void;
}

/** Where a stream's items go: a caller's connection (`Connection.outlet`), or a reader in this process. */
export interface StreamOutlet {
  item(value: unknown): void;
  end(): void;
  fail(error: unknown): void;
  /** The reader's side holds too much that it has not read yet: wait for `drain`. */
  readonly congested: boolean;
  drain(): Promise<void>;
  readonly closed: boolean;
}

/** Stands for an incoming request until its server says how to cancel it. */
const UNCANCELLABLE: Cancellable = { cancel() {} };

/**
 * The peer's requests that this side is serving on one connection, by id (those sent with id 0,
 * which want no answer, are only counted): what a `cancel` or a `credit` from the peer reaches,
 * what a draining server waits for, what is cancelled when the connection closes.
 */
export class PeerRequests {
  private readonly serving = new Map<number, Cancellable>();
  private anonymous = 0;
  private idleWaiters: (() => void)[] = [];

  /** Requests from the peer not answered yet. */
  get count(): number {
    return this.serving.size + this.anonymous;
  }

  has(id: number): boolean {
    return this.serving.has(id);
  }

  get(id: number): Cancellable | undefined {
    return this.serving.get(id);
  }

  /** A request arrived. */
  begin(id: number): void {
    if (id === 0) this.anonymous++;
    else this.serving.set(id, UNCANCELLABLE);
  }

  /** The server serving request `id` says how to cancel it. */
  track(id: number, call: Cancellable): void {
    if (this.serving.has(id)) this.serving.set(id, call);
  }

  /** Request `id` was answered: false when it was not one being served. */
  end(id: number): boolean {
    if (!(id === 0 ? this.anonymous > 0 && this.anonymous-- : this.serving.delete(id))) return false;
    if (this.idleWaiters.length && this.count === 0) for (const done of this.idleWaiters.splice(0)) done();
    return true;
  }

  /** Resolves once every request from the peer has been answered. */
  served(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((done) => this.idleWaiters.push(done));
  }

  /** Nobody is left to answer: the handlers still running may stop. */
  cancelAll(reason: Error): void {
    for (const call of this.serving.values()) call.cancel(reason);
    this.serving.clear();
    this.anonymous = 0;
    for (const done of this.idleWaiters.splice(0)) done();
  }
}
