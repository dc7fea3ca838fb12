import { debuglog } from "node:util";

const labcLog = debuglog("labc");

/**
 * What must never reach a log or a terminal as it is: C0 controls (a newline starts a forged
 * line, ESC drives the terminal), DEL, C1 controls (CSI and friends, for terminals that take
 * them), the Unicode line and paragraph separators, and the bidi marks, embeddings, overrides
 * and isolates that make a line read other than it is written.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with every unsafe character written as an escape (`\n`, `\x1b`, `\u202e`): one line, shown as it is. */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
  });
}

/**
 * `text` cut to about `max` characters when longer: its beginning and its end stay (what labc
 * says around a quoted piece is usually at one of them), the middle says how much was cut.
 */
export function capped(text: string, max: number): string {
  if (text.length <= max) return text;
  const tail = Math.floor(max / 4);
  return `${text.slice(0, max - tail)}…[${text.length - max} characters cut]…${text.slice(text.length - tail)}`;
}

/** A piece of text a peer sent, fit to be quoted in a log line or a table: escaped, and cut to `max` characters. */
export function peerText(text: unknown, max = 200): string {
  return escapeControls(capped(String(text), max));
}

/** How long one line of the log may be (before escaping): no line of labc's own comes near. */
const LINE_MAX = 2000;

/** Whether `NODE_DEBUG=labc` is set: hot paths test it before building a debug line. */
export const debugging = labcLog.enabled;

/**
 * Wire-level diagnostics: `NODE_DEBUG=labc` prints what is connected, sent and refused, often
 * quoting what a peer sent; strings are escaped and cut as `warn` does. Node's own logger costs
 * a call through rest arguments even when off, so off it is a bare no-op.
 */
export const debug: (format: string, ...args: unknown[]) => void = debugging
  ? (format, ...args) => labcLog(format, ...args.map((arg) => (typeof arg === "string" ? peerText(arg, LINE_MAX) : arg)))
  : () => {};

/**
 * Something went wrong that nobody awaits (a peer sent garbage, a subscriber threw): one line on
 * stderr (the router's log), whatever the message holds, since messages quote what peers sent.
 * With `error`, its name and message follow on that line and its stack frames on lines of their
 * own, indented (the only lines labc writes that do not start with `labc[pid]:`).
 */
export function warn(message: string, error?: unknown): void {
  let text = `labc[${process.pid}]: ${peerText(message, LINE_MAX)}`;
  if (error !== undefined) text += `: ${described(error)}`;
  process.stderr.write(`${text}\n`);
}

/** An error as one escaped line, then its stack's frames (code locations, not a peer's words), escaped too. */
function described(error: unknown): string {
  if (!(error instanceof Error)) return peerText(error, LINE_MAX);
  const line = peerText(error.message === "" ? error.name : `${error.name}: ${error.message}`, LINE_MAX);
  // The stack starts with the message, which may span lines (line breaks a peer sent): the
  // frames are the lines after it that say where ("at ...").
  const stack = typeof error.stack === "string" ? error.stack : "";
  const at = stack.indexOf(error.message);
  if (at < 0) return line;
  const frames = stack
    .slice(at + error.message.length)
    .split("\n")
    .map((frame) => frame.trim())
    .filter((frame) => frame.startsWith("at "));
  return [line, ...frames.slice(0, 50).map((frame) => `    ${peerText(frame, 500)}`)].join("\n");
}
