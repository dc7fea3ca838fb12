/**
 * Pieces of JSON text that recur, by what they are made from (a function's or topic's name with
 * the keys around it, a timeout, a length), kept as bytes or text: the hot paths copy them
 * instead of making them again, which costs more than the rest of a small frame. A process uses
 * few names; past `max` (MAX_PIECES unless said) the cache starts again rather than grow.
 */
export class Pieces<K, P = Buffer> {
  private readonly pieces = new Map<K, P>();
  /**
   * The piece given last and its key: a stream of publications or calls repeats one name, and
   * a comparison costs less than the Map's hashing and lookup (a piece never changes, so it
   * never goes stale).
   */
  private lastKey: K | typeof NONE = NONE;
  private lastPiece: P | undefined;
  constructor(
    private readonly make: (key: K) => P,
    private readonly max = MAX_PIECES,
  ) {}

  get(key: K): P {
    if (key === this.lastKey) return this.lastPiece!;
    let piece = this.pieces.get(key);
    if (piece === undefined) {
      if (this.pieces.size >= this.max) this.pieces.clear();
      this.pieces.set(key, (piece = this.make(key)));
    }
    this.lastKey = key;
    this.lastPiece = piece;
    return piece;
  }
}

const MAX_PIECES = 1024;
const NONE = Symbol("none");
