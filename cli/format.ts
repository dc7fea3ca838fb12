/** Turning command-line text into values and values into terminal text. */

import { escapeControls } from "../lib/log.js";

/** A command-line argument is JSON when it parses as JSON (`42`, `true`, `[1,2]`, `"7"`), else a string. */
export function parseArg(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/**
 * What JSON cannot show, shown in a form that says what it is: `{"$bigint": "12"}`,
 * `{"$map": [[key, value]...]}`, `{"$set": [...]}`, `{"$Float32Array": [...]}`, `{"$number": "NaN"}`,
 * `{"$error": {...}}`, `{"$regexp": "/x/g"}`; a Date as its ISO text, as JSON shows it.
 * `bytes` says how binary data is shown.
 */
function shown(bytes: (raw: Uint8Array) => unknown) {
  return function (this: any, key: string): unknown {
    const raw = this[key];
    switch (typeof raw) {
      case "bigint":
        return { $bigint: raw.toString() };
      case "number":
        return Number.isFinite(raw) ? raw : { $number: String(raw) };
      case "object":
        if (raw === null) return raw;
        if (isBytes(raw)) return bytes(raw);
        if (ArrayBuffer.isView(raw) && !(raw instanceof DataView)) return { [`$${(raw as any)[Symbol.toStringTag]}`]: Array.from(raw as unknown as ArrayLike<unknown>) };
        if (raw instanceof ArrayBuffer) return bytes(new Uint8Array(raw));
        if (raw instanceof Map) return { $map: [...raw] };
        if (raw instanceof Set) return { $set: [...raw] };
        if (raw instanceof RegExp) return { $regexp: String(raw) };
        if (raw instanceof Error) return { $error: { ...raw, name: raw.name, message: raw.message } };
    }
    return raw instanceof Date ? raw.toJSON() : raw;
  };
}

const base64 = shown((raw) => ({ $binary: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64") }));
const bytesAsSize = shown((raw) => `<${raw.byteLength} bytes>`);

/** JSON for machines: binary data as `{"$binary": "<base64>"}`, other kinds as `shown` says. */
export function toJson(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value, base64);
}

/** For people: strings as they are, binary data as raw bytes (so `> file` works), the rest as JSON. */
export function toText(value: unknown): string | Uint8Array {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "bigint") return value.toString();
  if (isBytes(value)) return value;
  return JSON.stringify(value, bytesAsSize, 2);
}

/** A value on one line: a string as it is unless it holds a line break, anything else compact JSON. */
export function toLine(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string" && !/[\r\n]/.test(value)) return value;
  return JSON.stringify(value, bytesAsSize);
}

/**
 * An argument read from a file or stdin: UTF-8 text is read as a typed argument is (JSON when
 * it parses, else the text), less one final line break; anything else travels as its bytes.
 */
export function argumentFrom(bytes: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return bytes;
  }
  return text.includes("\0") ? bytes : parseArg(text.replace(/\r?\n$/, ""));
}

/** Writes a result to stdout and resolves once it is flushed, so a large one is never cut. */
export function writeOut(value: unknown, json: boolean): Promise<void> {
  const text = json ? toJson(value) : toText(value);
  return new Promise((done) => {
    process.stdout.write(text, () => {
      if (typeof text === "string" && text !== "" && !text.endsWith("\n")) process.stdout.write("\n", () => done());
      else done();
    });
  });
}

/**
 * Writes one item of a stream and resolves once it is flushed: binary data as its bytes (a file's
 * chunks make the file again), anything else as one line (JSON with `json`).
 */
export function writeItem(item: unknown, json: boolean): Promise<void> {
  const out = json ? `${toJson(item)}\n` : isBytes(item) ? item : `${toLine(item)}\n`;
  return new Promise((done) => process.stdout.write(out, () => done()));
}

/**
 * A plain text table with a header row, columns padded to their widest cell. Cells often hold
 * what other hosts said of themselves (host names from discovery, function and service names):
 * control characters in them are shown escaped, never sent to the terminal.
 */
export function table(header: string[], unsafeRows: string[][]): string {
  const rows = unsafeRows.map((row) => row.map(escapeControls));
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
