/** Turning command-line text into values and values into terminal text. */

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

/** JSON for machines: binary data as `{"$binary": "<base64>"}`. */
export function toJson(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value, function (this: any, key) {
    const raw = this[key];
    return isBytes(raw) ? { $binary: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64") } : raw;
  });
}

/** For people: strings as they are, binary data as raw bytes (so `> file` works), the rest as JSON. */
export function toText(value: unknown): string | Uint8Array {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  if (isBytes(value)) return value;
  return JSON.stringify(value, bytesAsSize, 2);
}

/** A value on one line: a string as it is unless it holds a line break, anything else compact JSON. */
export function toLine(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string" && !/[\r\n]/.test(value)) return value;
  return JSON.stringify(value, bytesAsSize);
}

function bytesAsSize(this: any, key: string): unknown {
  const raw = this[key];
  return isBytes(raw) ? `<${raw.byteLength} bytes>` : raw;
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

/** A plain text table with a header row, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
