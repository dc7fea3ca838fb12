import type { FunctionEntry, Param } from "../lib/wire/message.js";
import { countProblem, formatSignature } from "../lib/signature.js";
import { parseArg } from "./format.js";

/** A command-line argument: its text as typed, or a value already read (from stdin or a file). */
export type CommandArg = { text: string } | { value: unknown };

/** A wrong count or an argument its declared type refuses, said before anything is sent. */
export class ArgumentProblem extends Error {}

/**
 * The function's parameters when every server offering it declares the same ones (else nothing
 * is known, and arguments go as typed, read as JSON when they parse).
 */
export function declaredParams(entries: FunctionEntry[]): FunctionEntry | undefined {
  const [first, ...others] = entries;
  if (!first?.params) return undefined;
  const same = JSON.stringify(first.params);
  return others.every((entry) => JSON.stringify(entry.params) === same) ? first : undefined;
}

/** The type an argument at `index` is declared with (a rest parameter's element type for the ones it takes). */
function typeAt(params: Param[], index: number): string | undefined {
  const param = params[index] ?? params.find((p) => p.rest);
  if (!param?.type) return undefined;
  if (param.rest && index >= params.indexOf(param)) return /^(.*)\[\]$/.exec(param.type)?.[1] ?? /^Array<(.*)>$/.exec(param.type)?.[1];
  return param.type;
}

/**
 * Arguments converted by the declared types: `number`, `boolean`, `bigint` from their text (and
 * refused when the text is none), `string` as typed (so that `labc call say 42` says "42");
 * any other type, or none, as JSON when the text parses as JSON, else as the text.
 */
export function typedArguments(args: CommandArg[], entry: FunctionEntry | undefined): unknown[] {
  const wrong = entry && countProblem(entry, args.length);
  if (wrong) throw new ArgumentProblem(wrong);
  return args.map((arg, index) => {
    if (!("text" in arg)) return arg.value;
    const type = entry?.params && typeAt(entry.params, index);
    const refuse = (what: string) => {
      const name = entry!.params![Math.min(index, entry!.params!.length - 1)]!.name;
      return new ArgumentProblem(`${formatSignature(entry!)}: ${name} must be ${what}, not ${JSON.stringify(arg.text)}`);
    };
    switch (type) {
      case "string":
        return arg.text;
      case "number": {
        const n = Number(arg.text);
        if (arg.text.trim() === "" || Number.isNaN(n)) throw refuse("a number");
        return n;
      }
      case "boolean":
        if (arg.text === "true" || arg.text === "false") return arg.text === "true";
        throw refuse("true or false");
      case "bigint":
        try {
          return BigInt(arg.text);
        } catch {
          throw refuse("a whole number");
        }
      default:
        return parseArg(arg.text);
    }
  });
}
