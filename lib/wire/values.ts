import { BadArgumentsError, MalformedFrameError } from "../errors.js";
import type { Limits } from "./limits.js";

// How values that JSON cannot carry travel inside a message body (docs/protocol.md, "Values
// beyond JSON"): binary data as raw parts listed under `$bin`, the other kinds in a JSON form
// listed under `$types`, so that a value arrives as what was sent. Plain JSON values pay one
// walk that allocates nothing and are written as JSON.stringify writes them.

/** Body key listing where binary parts go back. It never collides with user data, which lives
 * under the body's own keys (`args`, `v`, `data`). */
export const BIN_KEY = "$bin";
/** Body key listing the values to bring back to their kind, innermost first. */
export const TYPES_KEY = "$types";

type PathStep = string | number;
/** A `$types` entry: the kind, then the path from the body's root to the value. */
type TypeEntry = [string, ...PathStep[]];

export interface WireValue {
  value: unknown;
  blobs: Uint8Array[];
  paths: PathStep[][];
  types: TypeEntry[];
}

const NO_BLOBS: Uint8Array[] = [];
const NO_PATHS: PathStep[][] = [];
const NO_TYPES: TypeEntry[] = [];

/**
 * Whether JSON.stringify carries `value` as it is: no binary data, no Date, Map, Set, RegExp,
 * error, bigint, function, symbol, number JSON would change (NaN, ±Infinity, -0) or undefined
 * in an array anywhere inside. The common case, checked without allocating.
 */
export function isPlain(value: unknown, depth: number, limits: Limits, inArray = false): boolean {
  if (typeof value !== "object") return plainScalar(value, inArray);
  if (value === null) return true;
  if (depth > limits.maxDepth) return false; // the full walk reports it
  // Scalars are checked here rather than by a call each: most of what a small value holds.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "object" ? !isPlain(item, depth + 1, limits, true) : !plainScalar(item, true)) return false;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  const own = proto === Object.prototype || proto === null;
  if (!own) {
    if (special(value) !== undefined) return false;
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") return true;
  }
  try {
    for (const key in value) {
      // A plain object's keys are its own (for-in of an Object.prototype given enumerable keys
      // checks theirs too, which can only send the value the longer way): no lookup each. Such
      // an inherited getter that throws sends it that way too, where only own keys are read.
      if (!own && !Object.hasOwn(value, key)) continue;
      const item = (value as Record<string, unknown>)[key];
      if (typeof item === "object" ? !isPlain(item, depth + 1, limits) : !plainScalar(item, false)) return false;
    }
  } catch {
    return false;
  }
  return true;
}

/** isPlain of what is not an object. */
function plainScalar(value: unknown, inArray: boolean): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value) && (value !== 0 || 1 / value > 0);
    case "undefined":
      return !inArray; // an object leaves it out, which reads back the same
    default:
      return false; // bigint, function, symbol
  }
}

/** The kinds of object that travel in a form of their own; undefined for any other object. */
function special(value: object): string | undefined {
  // toStringTag names the built-in type even of a subclass (Buffer says Uint8Array).
  if (ArrayBuffer.isView(value)) return Buffer.isBuffer(value) ? "Buffer" : (value as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag];
  if (value instanceof ArrayBuffer) return "ArrayBuffer";
  if (value instanceof Date) return "Date";
  if (value instanceof Map) return "Map";
  if (value instanceof Set) return "Set";
  if (value instanceof RegExp) return "RegExp";
  if (value instanceof Error) return "Error";
  if (value instanceof Promise) return "Promise";
  if (isStream(value)) return "Stream";
  return undefined;
}

/**
 * Whether a function's result is a stream of items: an async iterable (an `async function*`'s
 * generator, a Node Readable...) or a generator. An array is a value, not a stream.
 */
export function isStream(value: unknown): value is AsyncIterable<unknown> | Generator<unknown> {
  if (typeof value !== "object" || value === null) return false;
  if (typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") return true;
  return typeof (value as Generator).next === "function" && Object.prototype.toString.call(value) === "[object Generator]";
}

/**
 * The form of `value` that JSON carries: binary values replaced by null and taken out as parts,
 * every other kind JSON would change replaced by its JSON form and listed with its path. Throws
 * BadArgumentsError naming the path (`args[0].when`) of a value that cannot travel. Containers
 * with nothing to change inside are reused as they are, not copied.
 */
export function toWire(body: object, limits: Limits): WireValue {
  if (isPlain(body, 0, limits)) return { value: body, blobs: NO_BLOBS, paths: NO_PATHS, types: NO_TYPES };
  const out: WireValue = { value: body, blobs: [], paths: [], types: [] };
  const path: PathStep[] = [];
  const shown: string[] = [];
  const refuse = (what: string): never => {
    const where = shown.join("");
    throw new BadArgumentsError(`${where.length > 120 ? `${where.slice(0, 120)}…` : where}: ${what}`);
  };
  const typed = (kind: string, form: unknown): unknown => {
    out.types.push([kind, ...path]);
    return form;
  };
  const inside = (steps: PathStep[], show: string, v: unknown, depth: number, inArray: boolean): unknown => {
    path.push(...steps);
    shown.push(show);
    const form = visit(v, depth, inArray);
    path.length -= steps.length;
    shown.pop();
    return form;
  };

  const visit = (v: unknown, depth: number, inArray: boolean): unknown => {
    switch (typeof v) {
      case "string":
      case "boolean":
        return v;
      case "number":
        return Number.isFinite(v) && (v !== 0 || 1 / v > 0) ? v : typed("Number", Object.is(v, -0) ? "-0" : String(v));
      case "undefined":
        return inArray ? typed("undefined", null) : undefined;
      case "bigint":
        return typed("BigInt", v < 0n ? `-${(-v).toString(16)}` : v.toString(16));
      case "function":
        return refuse(`a function (${v.name || "anonymous"}) cannot be sent`);
      case "symbol":
        return refuse(`a symbol (${v.toString()}) cannot be sent`);
    }
    if (typeof v !== "object" || v === null) return null;
    if (depth > limits.maxDepth) refuse(`nested deeper than ${limits.maxDepth} levels (or cyclic)`);
    if (Array.isArray(v)) {
      let copy: unknown[] | null = null;
      for (let i = 0; i < v.length; i++) {
        const form = inside([i], `[${i}]`, v[i], depth + 1, true);
        if (form !== v[i]) (copy ??= Array.from(v))[i] = form;
      }
      return copy ?? v;
    }
    const kind = special(v);
    switch (kind) {
      case undefined:
        break;
      case "Date":
        return typed(kind, Number.isNaN((v as Date).getTime()) ? null : (v as Date).getTime());
      case "Map":
        return typed(kind, Array.from(v as Map<unknown, unknown>, ([key, value], i) => [
          inside([i, 0], `<key ${i}>`, key, depth + 2, true),
          inside([i, 1], typeof key === "string" || typeof key === "number" ? `.get(${JSON.stringify(key)})` : `<value ${i}>`, value, depth + 2, true),
        ]));
      case "Set":
        return typed(kind, Array.from(v as Set<unknown>, (item, i) => inside([i], `<item ${i}>`, item, depth + 1, true)));
      case "RegExp":
        return typed(kind, [(v as RegExp).source, (v as RegExp).flags]);
      case "Error":
        return typed(kind, visit(errorFields(v as Error), depth + 1, false));
      case "Promise":
        return refuse("a promise cannot be sent (await it first)");
      case "Stream":
        return refuse("a stream cannot be sent inside a value (return it, and read it with labc.stream())");
      default: {
        if (out.blobs.length >= limits.maxBlobs) refuse(`more than ${limits.maxBlobs} binary values in one message`);
        const view = v as ArrayBufferView | ArrayBuffer;
        out.blobs.push(view instanceof ArrayBuffer ? new Uint8Array(view) : new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
        out.paths.push(path.slice());
        return kind === "Buffer" ? null : typed(kind, null);
      }
    }
    // Another class's instance with toJSON chose its own form; JSON.stringify applies it.
    if (Object.getPrototypeOf(v) !== Object.prototype && typeof (v as { toJSON?: unknown }).toJSON === "function") return v;
    let copy: Record<string, unknown> | null = null;
    for (const key of Object.keys(v)) {
      const field = (v as Record<string, unknown>)[key];
      const form = inside([key], /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`, field, depth + 1, false);
      if (form !== field) setOwn((copy ??= { ...(v as Record<string, unknown>) }), key, form);
    }
    return copy ?? v;
  };

  // The body's own keys read as the user knows them: `args[0]`, `result`.
  const root: Record<string, unknown> = {};
  for (const key of Object.keys(body)) {
    setOwn(root, key, inside([key], key === "v" ? "result" : key, (body as Record<string, unknown>)[key], 1, false));
  }
  out.value = root;
  return out;
}

/** What travels of an error: name, message, cause and its own fields (not the stack, which is
 * the sender's and goes only where `errors.send_stack` allows). */
function errorFields(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  if ("cause" in error) fields["cause"] = error.cause;
  if (error instanceof AggregateError) fields["errors"] = error.errors;
  for (const key of Object.keys(error)) if (key !== "stack") setOwn(fields, key, (error as unknown as Record<string, unknown>)[key]);
  return fields;
}

/** A plain own property, even for a key named `__proto__`. */
function setOwn(target: object, key: PathStep, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

/** Puts each binary part back at its path (decoded JSON, before `restoreTypes`). */
export function placeBinary(body: any, paths: unknown, parts: Buffer[]): void {
  if (!Array.isArray(paths) || paths.length !== parts.length) {
    throw new MalformedFrameError(`${parts.length} binary parts but no matching "${BIN_KEY}" paths`);
  }
  for (let i = 0; i < parts.length; i++) {
    const path = paths[i];
    if (!Array.isArray(path) || path.length === 0) throw new MalformedFrameError("bad binary path");
    const [parent, last] = reach(body, path, 0, "binary path", false);
    setOwn(parent, last, parts[i]);
  }
}

/** Brings every value listed under `$types` back to its kind, in the order listed (innermost first). */
export function restoreTypes(body: any, types: unknown): void {
  if (!Array.isArray(types)) throw new MalformedFrameError(`"${TYPES_KEY}" is not a list`);
  for (const entry of types) {
    if (!Array.isArray(entry) || entry.length < 2 || typeof entry[0] !== "string") {
      throw new MalformedFrameError(`bad "${TYPES_KEY}" entry`);
    }
    const [parent, last] = reach(body, entry, 1, "typed value's path", true);
    const revive = REVIVERS[entry[0]];
    if (!revive) throw new MalformedFrameError(`unknown value kind "${entry[0]}"`);
    setOwn(parent, last, revive(parent[last]));
  }
}

/** The container holding the value at `path` (from `from` on) and the value's key in it. */
function reach(root: any, path: unknown[], from: number, what: string, mustExist: boolean): [any, PathStep] {
  let target = root;
  for (let i = from; i < path.length; i++) {
    const step = path[i];
    if ((typeof step !== "string" && typeof step !== "number") || typeof target !== "object" || target === null) {
      throw new MalformedFrameError(`bad ${what}`);
    }
    const last = i === path.length - 1;
    if ((mustExist || !last) && !Object.hasOwn(target, step)) throw new MalformedFrameError(`${what} does not exist in the body`);
    if (last) return [target, step];
    target = target[step];
  }
  throw new MalformedFrameError(`bad ${what}`);
}

function malformed(kind: string): never {
  throw new MalformedFrameError(`bad ${kind} value`);
}

const STANDARD_ERRORS: Record<string, new (message?: string) => Error> = Object.assign(Object.create(null), {
  Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
});

const TYPED_ARRAYS: Record<string, { BYTES_PER_ELEMENT: number; new (buffer: ArrayBufferLike, offset: number, length: number): ArrayBufferView }> =
  Object.assign(Object.create(null), {
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array,
  });

function reviveError(form: unknown): Error {
  if (typeof form !== "object" || form === null) return malformed("Error");
  const { name, message, errors, ...own } = form as Record<string, unknown>;
  if (typeof name !== "string" || typeof message !== "string") return malformed("Error");
  const error = Array.isArray(errors) ? new AggregateError(errors, message) : new (STANDARD_ERRORS[name] ?? Error)(message);
  for (const key of Object.keys(own)) setOwn(error, key, own[key]);
  // As an error made here has them: name from its class, cause not enumerable.
  if (error.name !== name) Object.defineProperty(error, "name", { value: name, writable: true, configurable: true });
  if ("cause" in own) Object.defineProperty(error, "cause", { enumerable: false });
  // The stack was made here by the constructor above and would point into the decoder.
  Object.defineProperty(error, "stack", { value: `${name}: ${message}`, writable: true, configurable: true });
  return error;
}

const REVIVERS: Record<string, (form: any) => unknown> = Object.assign(Object.create(null), {
  undefined: (form: unknown) => (form === null ? undefined : malformed("undefined")),
  Number: (form: unknown) =>
    form === "NaN" || form === "Infinity" || form === "-Infinity" || form === "-0" ? Number(form) : malformed("Number"),
  BigInt: (form: unknown) =>
    typeof form === "string" && /^-?[0-9a-f]+$/.test(form)
      ? form.startsWith("-") ? -BigInt(`0x${form.slice(1)}`) : BigInt(`0x${form}`)
      : malformed("BigInt"),
  Date: (form: unknown) => (form === null || typeof form === "number" ? new Date(form ?? Number.NaN) : malformed("Date")),
  Map: (form: unknown) =>
    Array.isArray(form) && form.every((pair) => Array.isArray(pair) && pair.length === 2)
      ? new Map(form as [unknown, unknown][])
      : malformed("Map"),
  Set: (form: unknown) => (Array.isArray(form) ? new Set(form) : malformed("Set")),
  RegExp: (form: unknown) => {
    if (!Array.isArray(form) || typeof form[0] !== "string" || typeof form[1] !== "string") return malformed("RegExp");
    try {
      return new RegExp(form[0], form[1]);
    } catch {
      return malformed("RegExp");
    }
  },
  Error: reviveError,
  ArrayBuffer: (part: unknown) => (Buffer.isBuffer(part) ? part.buffer.slice(part.byteOffset, part.byteOffset + part.byteLength) : malformed("ArrayBuffer")),
  DataView: (part: unknown) => (Buffer.isBuffer(part) ? new DataView(part.buffer, part.byteOffset, part.byteLength) : malformed("DataView")),
  ...Object.fromEntries(Object.keys(TYPED_ARRAYS).map((name) => [name, (part: unknown) => typedArray(name, part)])),
});

function typedArray(name: string, part: unknown): ArrayBufferView {
  const Type = TYPED_ARRAYS[name]!;
  const size = Type.BYTES_PER_ELEMENT;
  if (!Buffer.isBuffer(part) || part.byteLength % size !== 0) return malformed(name);
  // A view must start at a multiple of its element size; a part that does not is copied.
  const bytes = part.byteOffset % size === 0 ? part : Buffer.from(part);
  return new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
}
