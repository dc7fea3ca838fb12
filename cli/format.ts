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
  return JSON.stringify(value, function (this: any, key) {
    const raw = this[key];
    return isBytes(raw) ? `<${raw.byteLength} bytes>` : raw;
  }, 2);
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
