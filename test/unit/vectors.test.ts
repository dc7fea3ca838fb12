import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { MalformedFrameError } from "../../lib/errors.js";
import { decodeMessage, encodeMessage } from "../../lib/wire/codec.js";
import { KIND_NAMES, type Kind } from "../../lib/wire/message.js";
import { problemWith } from "../../lib/wire/validate.js";

/**
 * One protocol, pinned: test/vectors/frames.json holds frames of docs/protocol.md as bytes, which
 * every side's codec reads (the Python client's tests read the same file). A good frame must
 * have the header it says and decode to a message that encodes back to the very same bytes; a
 * malformed one must be refused.
 */

interface Refusal {
  name: string;
  to: "router" | "server";
  before: string[];
  sent: string;
  answer: string | null;
  closes: boolean;
}

interface Vector {
  name: string;
  frame: string;
  kind?: number;
  id?: number;
  json?: string;
  parts?: string[];
  malformed?: string;
}

const { vectors, refusals } = JSON.parse(readFileSync(join(__dirname, "..", "vectors", "frames.json"), "utf8")) as { vectors: Vector[]; refusals: Refusal[] };
const good = vectors.filter((vector) => vector.malformed === undefined);
const bad = vectors.filter((vector) => vector.malformed !== undefined);

describe("the protocol's test vectors (test/vectors/frames.json)", () => {
  test("there are good and malformed ones, and docs/protocol.md's examples are among them", () => {
    expect(good.length).toBeGreaterThan(10);
    expect(bad.length).toBeGreaterThan(2);
    const doc = readFileSync(join(__dirname, "..", "..", "docs", "protocol.md"), "utf8");
    // The header lines the page prints for echo("hi") and size(<de ad>).
    for (const name of ['echo("hi"), id 1', "size(<de ad>), id 2"]) {
      const frame = good.find((vector) => vector.name === name)!.frame;
      const header = frame.slice(0, 32).match(/../g)!;
      const printed = [header.slice(0, 4), [header[4]], [header[5]], header.slice(6, 8), header.slice(8, 12), header.slice(12, 16)].map((group) => group.join(" ")).join("  ");
      expect(doc).toContain(printed);
    }
    expect(doc.replace(/\n /g, "")).toContain(good.find((vector) => vector.name.startsWith("log("))!.json);
  });

  test.each(good.map((vector) => [vector.name, vector] as const))("%s: its header, body and parts as written, and encoded back byte for byte", (_name, vector) => {
    const bytes = Buffer.from(vector.frame, "hex");
    expect(bytes.readUInt32BE(0)).toBe(bytes.length - 4);
    expect(bytes[4]).toBe(vector.kind);
    expect(bytes[5]).toBe(0);
    expect(bytes.readUInt16BE(6)).toBe(vector.parts!.length);
    expect(bytes.readUInt32BE(8)).toBe(vector.id);
    const jsonLength = bytes.readUInt32BE(12);
    expect(bytes.subarray(16, 16 + jsonLength).toString()).toBe(vector.json);
    let at = 16 + jsonLength + 4 * vector.parts!.length;
    vector.parts!.forEach((part, i) => {
      const length = bytes.readUInt32BE(16 + jsonLength + 4 * i);
      expect(bytes.subarray(at, at + length).toString("hex")).toBe(part);
      at += length;
    });
    expect(at).toBe(bytes.length);

    const message = decodeMessage(bytes.subarray(4));
    expect(message.kind).toBe(vector.kind);
    expect(message.id).toBe(vector.id);
    const again = Buffer.concat([encodeMessage(message.kind as Kind, message.id, message.body)].flat());
    expect(again.toString("hex")).toBe(vector.frame);
  });

  test.each(bad.map((vector) => [vector.name, vector] as const))("%s: refused", (_name, vector) => {
    const bytes = Buffer.from(vector.frame, "hex");
    expect(() => {
      // A decoder checks the declared length against what came (the frame decoder does), then the body.
      if (bytes.readUInt32BE(0) !== bytes.length - 4) throw new MalformedFrameError("length");
      decodeMessage(bytes.subarray(4));
    }).toThrow(MalformedFrameError);
  });
});

/**
 * The refusals (made by test/vectors/refusals.ts from a real router's and server's answers, and
 * checked against the Python server by clients/python/tests/test_hostile.py): each frame sent is
 * a well-formed frame, each answer an exc that decodes and encodes back byte for byte, and the
 * body checks of lib/wire/validate.ts name the same problem as the answer.
 */
describe("the protocol's refusals (test/vectors/frames.json)", () => {
  test("there are some, answered and not", () => {
    expect(refusals.filter((r) => r.answer !== null).length).toBeGreaterThan(3);
    expect(refusals.filter((r) => r.answer === null).length).toBeGreaterThan(1);
    expect(refusals.find((r) => r.name.startsWith("hello of protocol version 2"))!.closes).toBe(true);
  });

  test.each(refusals.map((r) => [r.name, r] as const))("%s: what is sent decodes, the answer decodes and encodes back byte for byte", (_name, r) => {
    for (const hex of [...r.before, r.sent]) {
      const bytes = Buffer.from(hex, "hex");
      expect(bytes.readUInt32BE(0)).toBe(bytes.length - 4);
      decodeMessage(bytes.subarray(4));
    }
    const sent = decodeMessage(Buffer.from(r.sent, "hex").subarray(4));
    if (r.answer === null) {
      expect(r.closes).toBe(true);
      return;
    }
    const bytes = Buffer.from(r.answer, "hex");
    expect(bytes.readUInt32BE(0)).toBe(bytes.length - 4);
    const answer = decodeMessage(bytes.subarray(4));
    expect(answer.kind).toBe(4);
    expect(answer.id).toBe(sent.id);
    expect(problemWith(answer.kind as Kind, answer.body as Record<string, unknown>)).toBeUndefined();
    expect(Buffer.concat([encodeMessage(answer.kind as Kind, answer.id, answer.body)].flat()).toString("hex")).toBe(r.answer);
    const body = answer.body as { code: string; message: string };
    const problem = problemWith(sent.kind as Kind, sent.body as Record<string, unknown>);
    if (body.code === "LABC_BAD_MESSAGE" && problem) expect(body.message).toBe(`bad ${KIND_NAMES[sent.kind as Kind]} message: ${problem}`);
  });
});
