import { describe, expect, test } from "vitest";
import {
  calculateGenerator,
  CPace,
  generatorString,
  intermediateKey,
  lvCat,
  prependLen,
  scalarMultVfy,
  tagsMatch,
  transcriptIr,
} from "../../lib/trust/cpace.js";

/**
 * lib/trust/cpace.ts against the test vectors of draft-irtf-cfrg-cpace (appendix "Test vector for
 * CPace using group ristretto255 and hash SHA-512", and the string utilities' vectors), then runs
 * of the two sides with the same and with different passwords.
 */

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");

const PRS = Buffer.from("Password");
const CI = hex("0b415f696e69746961746f720b425f726573706f6e646572");
const SID = hex("7e4b4791d6a8ef019b936c79fb7f2c57");
const AD_A = Buffer.from("ADa");
const AD_B = Buffer.from("ADb");
const YA_SCALAR = hex("da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08");
const YB_SCALAR = hex("d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d");
const GENERATOR_STRING = hex(`
  11435061636552697374726574746f3235350850617373776f726464
  00000000000000000000000000000000000000000000000000000000
  00000000000000000000000000000000000000000000000000000000
  00000000000000000000000000000000000000000000000000000000
  00000000000000000000000000000000180b415f696e69746961746f
  720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
  2c57`);
const G = hex("222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56");
const YA = hex("d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157");
const YB = hex("3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258");
const K = hex("80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f");
const TRANSCRIPT_IR = hex(`
  20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e
  ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa
  8232b5ebe63324e2d9e7433f725803414462`);
const ISK = hex(`
  b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc
  ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c
  3fa2068af7900447`);

describe("CPace (ristretto255, SHA-512): the draft's test vectors", () => {
  test("prepend_len and lv_cat", () => {
    expect(prependLen(Buffer.alloc(0)).toString("hex")).toBe("00");
    expect(prependLen(Buffer.from("1234")).toString("hex")).toBe("0431323334");
    const r127 = Buffer.from(Array.from({ length: 127 }, (_, i) => i));
    const r128 = Buffer.from(Array.from({ length: 128 }, (_, i) => i));
    expect(prependLen(r127).subarray(0, 2).toString("hex")).toBe("7f00");
    expect(prependLen(r128).subarray(0, 3).toString("hex")).toBe("800100");
    expect(prependLen(r128).length).toBe(130);
    expect(lvCat(Buffer.from("1234"), Buffer.from("5"), Buffer.alloc(0), Buffer.from("678")).toString("hex")).toBe("043132333401350003363738");
  });

  test("generator_string and the generator g", () => {
    expect(generatorString(PRS, CI, SID).toString("hex")).toBe(GENERATOR_STRING.toString("hex"));
    expect(calculateGenerator(PRS, CI, SID).toString("hex")).toBe(G.toString("hex"));
  });

  test("Ya, Yb, K, the transcript and ISK", () => {
    const a = new CPace("initiator", PRS, CI, SID, AD_A, YA_SCALAR);
    const b = new CPace("responder", PRS, CI, SID, AD_B, YB_SCALAR);
    expect(a.y.toString("hex")).toBe(YA.toString("hex"));
    expect(b.y.toString("hex")).toBe(YB.toString("hex"));
    expect(scalarMultVfy(YA_SCALAR, YB)!.toString("hex")).toBe(K.toString("hex"));
    expect(scalarMultVfy(YB_SCALAR, YA)!.toString("hex")).toBe(K.toString("hex"));
    expect(transcriptIr(YA, AD_A, YB, AD_B).toString("hex")).toBe(TRANSCRIPT_IR.toString("hex"));
    expect(intermediateKey(SID, K, TRANSCRIPT_IR).toString("hex")).toBe(ISK.toString("hex"));
    const fromA = a.finish(b.y, AD_B)!;
    const fromB = b.finish(a.y, AD_A)!;
    expect(fromA.isk.toString("hex")).toBe(ISK.toString("hex"));
    expect(fromB.isk.toString("hex")).toBe(ISK.toString("hex"));
    // Each side's tag is what the other expects.
    expect(tagsMatch(fromB.expectedTag, fromA.ownTag)).toBe(true);
    expect(tagsMatch(fromA.expectedTag, fromB.ownTag)).toBe(true);
  });

  test("an element that is the identity, or does not decode, aborts the run (scalar_mult_vfy)", () => {
    const a = new CPace("initiator", PRS, CI, SID, AD_A, YA_SCALAR);
    expect(a.finish(Buffer.alloc(32), AD_B)).toBeUndefined();
    // Not a canonical ristretto255 encoding: a negative field element (its low bit set).
    expect(a.finish(hex("0100000000000000000000000000000000000000000000000000000000000000"), AD_B)).toBeUndefined();
    expect(a.finish(Buffer.alloc(31, 7), AD_B)).toBeUndefined();
    expect(a.finish(Buffer.alloc(32, 0xff), AD_B)).toBeUndefined();
  });
});

describe("CPace runs", () => {
  const sid = Buffer.from("0123456789abcdef");
  const ci = Buffer.from("labc test");

  test("the same password: both sides hold the same key and confirm each other", () => {
    const a = new CPace("initiator", Buffer.from("7-tiger-violet"), ci, sid, AD_A);
    const b = new CPace("responder", Buffer.from("7-tiger-violet"), ci, sid, AD_B);
    const ra = a.finish(b.y, AD_B)!;
    const rb = b.finish(a.y, AD_A)!;
    expect(ra.isk.equals(rb.isk)).toBe(true);
    expect(tagsMatch(rb.expectedTag, ra.ownTag)).toBe(true);
  });

  test("another password: the keys differ and neither tag passes", () => {
    const a = new CPace("initiator", Buffer.from("7-tiger-violet"), ci, sid, AD_A);
    const b = new CPace("responder", Buffer.from("7-tiger-violen"), ci, sid, AD_B);
    const ra = a.finish(b.y, AD_B)!;
    const rb = b.finish(a.y, AD_A)!;
    expect(ra.isk.equals(rb.isk)).toBe(false);
    expect(tagsMatch(rb.expectedTag, ra.ownTag)).toBe(false);
    expect(tagsMatch(ra.expectedTag, rb.ownTag)).toBe(false);
  });

  test("another session id or channel: the keys differ", () => {
    const a = new CPace("initiator", Buffer.from("pw"), ci, sid, AD_A);
    const b = new CPace("responder", Buffer.from("pw"), ci, Buffer.from("fedcba9876543210"), AD_B);
    expect(a.finish(b.y, AD_B)!.isk.equals(b.finish(a.y, AD_A)!.isk)).toBe(false);
  });
});
