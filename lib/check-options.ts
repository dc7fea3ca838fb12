import { BadArgumentsError } from "./errors.js";

/** The names of an options object's keys, kept beside its interface (`satisfies` keeps them equal). */
export type OptionNames<T> = Readonly<Record<keyof T, true>>;

/**
 * Refuses an options object with a key its function does not take. TypeScript checks them where
 * it compiles the caller; a plain script's `callWith("f", [], { timeout: 500 })` would otherwise
 * run with the default timeout and say nothing (Python's keyword arguments refuse an unknown one
 * as well). `where` names the function and what it was called for: `callWith("f")`.
 */
export function checkOptions(where: string, options: unknown, names: OptionNames<object>): void {
  if (options === undefined) return;
  const known = Object.keys(names);
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new BadArgumentsError(`${where}: its options are an object with ${known.join(", ")}, not ${describe(options)}`);
  }
  // Own keys only: a key someone put on Object.prototype must not break every call with options.
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(names, key)) continue;
    const meant = known.find((name) => name.toLowerCase() === key.toLowerCase() || name === `${key}Ms`);
    throw new BadArgumentsError(`${where}: no option "${key}"${meant ? ` (did you mean "${meant}"?)` : ""}; its options are ${known.join(", ")}`);
  }
}

/** For a function that returns a promise: checkOptions's refusal as a rejection, else undefined. */
export function refusedOptions(where: string, options: unknown, names: OptionNames<object>): Promise<never> | undefined {
  try {
    checkOptions(where, options, names);
    return undefined;
  } catch (error) {
    return Promise.reject(error);
  }
}

/** A value as an argument error names it: a string quoted, an array or function by its kind. */
export function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (typeof value === "function") return "a function";
  if (typeof value === "object" && value !== null) return "an object";
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}
