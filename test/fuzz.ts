// Shared by the fuzz tests of the wire (test/unit/wire-fuzz.test.ts, frame-text-fuzz.test.ts).

/** mulberry32: small, fast, and the same sequence on every machine. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** The same JSON value: kinds, -0, own keys (and `__proto__` among them) in order, prototypes, descriptors. */
export function same(a: unknown, b: unknown): boolean {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const keys = Reflect.ownKeys(a);
  const others = Reflect.ownKeys(b);
  if (keys.length !== others.length || keys.some((key, i) => key !== others[i])) return false;
  return keys.every((key) => {
    const x = Object.getOwnPropertyDescriptor(a, key)!;
    const y = Object.getOwnPropertyDescriptor(b, key)!;
    return x.enumerable === y.enumerable && x.writable === y.writable && x.configurable === y.configurable && same(x.value, y.value);
  });
}
