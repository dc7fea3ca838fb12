import type { FunctionEntry, Param } from "./wire/message.js";

/**
 * A function's parameters as its callers see them in `labc ls --long` and as its server checks a
 * call's argument count against: names and arity from the function's own text, types from the
 * TypeScript source (services labc compiles, see `typesInSource`) or from `emitDecoratorMetadata`.
 */

/**
 * Splits a parameter list at its top-level commas (or `separator`), skipping strings, templates,
 * comments and brackets; with `angles`, TypeScript's `<...>` too (`Map<string, number>`).
 */
export function splitTopLevel(text: string, separator = ",", angles = false): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'" || c === "`") i = endOfString(text, i);
    else if (c === "/" && text[i + 1] === "/") i = text.indexOf("\n", i) === -1 ? text.length : text.indexOf("\n", i);
    else if (c === "/" && text[i + 1] === "*") i = text.indexOf("*/", i + 2) === -1 ? text.length : text.indexOf("*/", i + 2) + 1;
    else if (c === "(" || c === "[" || c === "{" || (angles && c === "<")) depth++;
    else if (c === ")" || c === "]" || c === "}" || (angles && c === ">" && text[i - 1] !== "=" && text[i + 1] !== "=")) depth--;
    else if (c === separator && depth === 0 && !(separator === "=" && isOperator(text, i))) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((part) => stripComments(part).trim()).filter((part) => part !== "");
}

/** An `=` that belongs to `=>`, `==`, `!=`, `<=` or `>=`, not a default value. */
function isOperator(text: string, at: number): boolean {
  return text[at + 1] === ">" || text[at + 1] === "=" || "=!<>".includes(text[at - 1] ?? "");
}

function endOfString(text: string, at: number): number {
  const quote = text[at];
  for (let i = at + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === quote) return i;
  }
  return text.length;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ");
}

/** The text between the parenthesis at `open` and its match (exclusive), or undefined. */
function enclosed(text: string, open: number): { inside: string; end: number } | undefined {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'" || c === "`") i = endOfString(text, i);
    else if (c === "/" && text[i + 1] === "*") i = text.indexOf("*/", i + 2) === -1 ? text.length : text.indexOf("*/", i + 2) + 1;
    else if (c === "/" && text[i + 1] === "/") i = text.indexOf("\n", i) === -1 ? text.length : text.indexOf("\n", i);
    else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return { inside: text.slice(open + 1, i), end: i };
  }
  return undefined;
}

/** One parameter's text (`b = 2`, `...rest`, `{ x, y }`, or TypeScript's `b?: number`) as a Param. */
function paramOf(text: string, typed: boolean): Param | undefined {
  let rest = false;
  let body = text;
  if (body.startsWith("...")) {
    rest = true;
    body = body.slice(3).trim();
  }
  const [target, ...defaulted] = splitTopLevel(body, "=");
  if (target === undefined) return undefined;
  let name = target;
  let type: string | undefined;
  if (typed) {
    const [declared, ...types] = splitTopLevel(target, ":");
    name = declared ?? target;
    if (types.length > 0) type = types.join(":").replace(/\s+/g, " ").trim();
  }
  let optional = defaulted.length > 0;
  if (name.endsWith("?")) {
    optional = true;
    name = name.slice(0, -1).trim();
  }
  // TypeScript's `this: T` says what `this` is; callers never pass it.
  if (typed && name === "this") return undefined;
  name = name.replace(/\s+/g, " ");
  const param: Param = { name };
  if (type !== undefined) param.type = type;
  if (optional) param.optional = true;
  if (rest) param.rest = true;
  return param;
}

function paramsOf(list: string, typed: boolean): Param[] {
  return splitTopLevel(list, ",", typed).flatMap((text) => paramOf(text, typed) ?? []);
}

/**
 * A function's parameters from its own text (`fn.toString()`): names, which have defaults and
 * which is a rest parameter. Undefined for what cannot be read (a bound or native function).
 */
export function paramsOfFunction(fn: Function): Param[] | undefined {
  const text = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}$/.test(text)) return undefined;
  const arrow = /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(text);
  if (arrow) return [{ name: arrow[1]! }];
  const open = text.indexOf("(");
  const list = open === -1 ? undefined : enclosed(text, open);
  return list ? paramsOf(list.inside, false) : undefined;
}

/** A decorated method's parameters as its TypeScript source declares them. */
export interface SourceSignature {
  method: string;
  params: Param[];
}

const DECORATOR = /@(?:register|subscribe|watch)\b/g;

/**
 * The parameters of each method decorated with `@register`, `@subscribe` or `@watch` in a
 * TypeScript source, with their declared types and `?`: what compiling strips and what the CLI
 * converts arguments by. A text scan, not a parser: what it cannot read is left out, and
 * `withSourceTypes` keeps a type only where the names agree with the compiled function's.
 */
export function typesInSource(source: string): SourceSignature[] {
  const found: SourceSignature[] = [];
  let scanned = 0;
  for (const match of source.matchAll(DECORATOR)) {
    // A further decorator of a method already read.
    if (match.index < scanned) continue;
    let at = match.index + match[0].length;
    // Past this decorator's arguments, then any further decorators and modifiers, to the method's name.
    for (;;) {
      while (/\s/.test(source[at] ?? "")) at++;
      if (source[at] === "(") {
        const args = enclosed(source, at);
        if (!args) break;
        at = args.end + 1;
        continue;
      }
      const word = /^(?:@[\w$.]+|public|protected|override|async|\*)/.exec(source.slice(at, at + 64));
      if (!word) break;
      at += word[0].length;
    }
    const head = /^([A-Za-z_$][\w$]*)\s*(?:<[^()]*>)?\s*\(/.exec(source.slice(at, at + 512));
    if (!head) continue;
    const list = enclosed(source, at + head[0].length - 1);
    if (!list) continue;
    found.push({ method: head[1]!, params: paramsOf(list.inside, true) });
    scanned = list.end;
  }
  return found;
}

/** The global table compiled services add their source signatures to (see lib/services/compile.ts). */
export const SOURCE_SIGNATURES = Symbol.for("labc:source-signatures");

function sourceSignatures(): SourceSignature[] {
  return ((globalThis as Record<symbol, SourceSignature[] | undefined>)[SOURCE_SIGNATURES] ??= []);
}

/** Names of the types `emitDecoratorMetadata` records, as TypeScript spells them. */
const PRIMITIVES = new Map<unknown, string>([
  [Number, "number"],
  [String, "string"],
  [Boolean, "boolean"],
  [BigInt, "bigint"],
  [Array, "unknown[]"],
]);

function typeFromMetadata(type: unknown): string | undefined {
  // `Object` stands for any, unknown, interfaces and object literals alike: it says nothing.
  if (typeof type !== "function" || type === Object) return undefined;
  return PRIMITIVES.get(type) ?? type.name;
}

/**
 * The signature of a function served under `name`: its parameters from its text, typed from the
 * source of a service labc compiled (when exactly one source method of that name has the same
 * parameter names) or else from `emitDecoratorMetadata` (`prototype` and `key` of a method).
 */
export function signatureOf(fn: Function, method: string, prototype?: object): Param[] | undefined {
  const params = paramsOfFunction(fn);
  if (!params) return undefined;
  const names = params.map((param) => param.name).join(",");
  const candidates = sourceSignatures().filter(
    (signature) => signature.method === method && signature.params.map((param) => param.name).join(",") === names,
  );
  const distinct = new Set(candidates.map((signature) => JSON.stringify(signature.params)));
  if (distinct.size === 1) return candidates[0]!.params;
  if (prototype) {
    // reflect-metadata, loaded by the decorators, adds getMetadata to Reflect.
    const types = (Reflect as { getMetadata?: (key: string, target: object, property: string) => unknown }).getMetadata?.("design:paramtypes", prototype, method);
    if (Array.isArray(types)) {
      return params.map((param, i) => {
        const type = typeFromMetadata(types[i]);
        return type === undefined ? param : { ...param, type };
      });
    }
  }
  return params;
}

/** `add(a: number, b?: number)`: a function as `labc ls --long` shows it. */
export function formatSignature(entry: FunctionEntry): string {
  if (!entry.params) return `${entry.name}(...)`;
  const params = entry.params.map(
    (param) => `${param.rest ? "..." : ""}${param.name}${param.optional ? "?" : ""}${param.type ? `: ${param.type}` : ""}`,
  );
  return `${entry.name}(${params.join(", ")})`;
}

/** How many arguments a function takes: [fewest, most] (most is Infinity with a rest parameter). */
export function arity(params: readonly Param[]): [number, number] {
  let fewest = 0;
  params.forEach((param, i) => {
    if (!param.optional && !param.rest) fewest = i + 1;
  });
  return [fewest, params.some((param) => param.rest) ? Infinity : params.length];
}

/** What is wrong with calling `entry` with `count` arguments, or undefined when nothing is (or nothing is known). */
export function countProblem(entry: FunctionEntry, count: number): string | undefined {
  if (!entry.params) return undefined;
  const [fewest, most] = arity(entry.params);
  if (count >= fewest && count <= most) return undefined;
  const takes = fewest === most ? `${fewest}` : most === Infinity ? `at least ${fewest}` : `${fewest} to ${most}`;
  return `${formatSignature(entry)} takes ${takes} argument${takes.endsWith(" 1") || takes === "1" ? "" : "s"}, not ${count}`;
}
