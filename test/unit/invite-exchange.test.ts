import { createCipheriv, hkdfSync } from "node:crypto";
import { describe, expect, test } from "vitest";
import type { InviteMessage, MessagePipe } from "../../lib/invite/invite-channel.js";
import { newInviteCode, normalizeCode, parseInviteCode } from "../../lib/invite/invite-code.js";
import { offerSecret, receiveSecret, type JoinOutcome } from "../../lib/invite/invite-exchange.js";
import { INVITE_WORDS } from "../../lib/invite/invite-words.js";
import { capturedFrom, guessTests, wrongGuesses } from "../fixtures/offline-guess.js";

/**
 * The invite's exchange (lib/invite/invite-exchange.ts) between two in-memory pipes, with a
 * recorder in the middle that keeps every byte as an eavesdropper would.
 */

function pipes(): { inviter: MessagePipe; joiner: MessagePipe; wire: () => Buffer } {
  const recorded: Buffer[] = [];
  const side = () => {
    const inbox: InviteMessage[] = [];
    const waiting: ((m: InviteMessage) => void)[] = [];
    let closed = false;
    return {
      deliver(message: InviteMessage) {
        const next = waiting.shift();
        if (next) next(message);
        else inbox.push(message);
      },
      close() {
        closed = true;
      },
      receive(): Promise<InviteMessage> {
        const message = inbox.shift();
        if (message) return Promise.resolve(message);
        if (closed) return Promise.reject(new Error("closed"));
        return new Promise((resolve) => waiting.push(resolve));
      },
    };
  };
  const a = side();
  const b = side();
  const pipe = (own: ReturnType<typeof side>, other: ReturnType<typeof side>): MessagePipe => ({
    send(message) {
      recorded.push(Buffer.from(JSON.stringify(message)));
      other.deliver(message);
    },
    end(message) {
      if (message) this.send(message);
      other.close();
    },
    receive: () => own.receive(),
  });
  return { inviter: pipe(a, b), joiner: pipe(b, a), wire: () => Buffer.concat(recorded) };
}

const SECRET = `labc1_${Buffer.alloc(32, 7).toString("base64url")}`;
const inviterParty = { name: "computer1", hostId: "aaaa" };
const joinerParty = { name: "computer2", hostId: "bbbb" };

async function run(code: string, typed: string) {
  const { inviter, joiner, wire } = pipes();
  let spent = 0;
  const nameplate = code.split("-")[0]!;
  const offered = offerSecret(inviter, { code, nameplate }, inviterParty, { secret: SECRET }, () => ++spent === 1);
  const joined: JoinOutcome = await receiveSecret(joiner, { text: typed, nameplate: typed.split("-")[0]! }, joinerParty);
  if (joined.kind === "received") joined.confirm(true);
  return { offered: await offered, joined, spent, wire };
}

describe("an invite's code", () => {
  test("is a number from 1 to 99 and two words of the list, and parses back as typed loosely", () => {
    for (let i = 0; i < 200; i++) {
      const code = newInviteCode();
      expect(code.text).toMatch(/^([1-9]\d?)-[a-z]+-[a-z]+$/);
      expect(parseInviteCode(` ${code.text.toUpperCase().replace(/-/g, "  ")} `)).toEqual(code);
    }
    expect(parseInviteCode("07-tiger-wheat")).toEqual({ text: "7-tiger-wheat", nameplate: "7" });
    expect(normalizeCode("7_Tiger wheat")).toBe("7-tiger-wheat");
    expect(parseInviteCode("tiger-wheat")).toMatch(/a number and two words/);
    expect(parseInviteCode("7-tigre-wheat")).toMatch(/the first word of the code is not one of the words/);
    expect(INVITE_WORDS.length).toBe(new Set(INVITE_WORDS).size);
    expect(INVITE_WORDS.every((word) => /^[a-z]{3,5}$/.test(word))).toBe(true);
  });
});

describe("the exchange", () => {
  test("the right code: the joiner gets the secret, the inviter its receipt, the invite is spent once", async () => {
    const { offered, joined, spent } = await run("7-tiger-wheat", "7-tiger-wheat");
    expect(joined).toMatchObject({ kind: "received", payload: { secret: SECRET }, inviter: inviterParty });
    expect(offered).toEqual({ kind: "joined", peer: joinerParty });
    expect(spent).toBe(1);
  });

  test("a wrong code: both sides say so, nothing is sealed, the invite is spent", async () => {
    const { offered, joined, spent, wire } = await run("7-tiger-wheat", "7-tiger-whale");
    expect(joined).toEqual({ kind: "wrong-code" });
    expect(offered).toEqual({ kind: "wrong-code" });
    expect(spent).toBe(1);
    expect(wire().toString()).not.toContain("sealed");
  });

  test("another invite's number is answered without spending this one", async () => {
    const { offered, joined, spent } = await run("7-tiger-wheat", "8-tiger-wheat");
    expect(joined).toMatchObject({ kind: "refused", code: "LABC_NO_INVITE" });
    expect(offered).toEqual({ kind: "other-invite", nameplate: "8" });
    expect(spent).toBe(0);
  });

  test("a first message whose element is the identity is refused (CPace's abort), the invite spent", async () => {
    const { inviter, joiner } = pipes();
    let spent = 0;
    const offered = offerSecret(inviter, { code: "7-tiger-wheat", nameplate: "7" }, inviterParty, { secret: SECRET }, () => ++spent === 1);
    await joiner.receive();
    joiner.send({ nameplate: "7", y: Buffer.alloc(32).toString("base64url"), ad: JSON.stringify(joinerParty) });
    expect(await offered).toMatchObject({ kind: "broken" });
    expect(spent).toBe(1);
  });

  test("what an eavesdropper records tests no guess offline: the right code fits no better than 40 wrong ones", async () => {
    const code = "7-tiger-wheat";
    const { joined, wire } = await run(code, code);
    expect(joined.kind).toBe("received");
    const bytes = wire();
    expect(bytes.toString()).not.toContain(SECRET);
    expect(bytes.toString()).not.toContain(Buffer.alloc(32, 7).toString("base64"));
    expect(bytes.toString()).not.toContain("tiger");
    const captured = capturedFrom(bytes)!;
    expect(captured).toBeDefined();
    const right = guessTests(captured, code);
    for (const guess of wrongGuesses(code, INVITE_WORDS, 40)) expect(guessTests(captured, guess)).toEqual(right);
    expect(Object.values(right).every((fits) => fits === false)).toBe(true);
  });

  test("the same tests do tell the right code in a naive exchange that seals under a key from the code alone", async () => {
    const code = "7-tiger-wheat";
    const { wire } = await run(code, code);
    const captured = capturedFrom(wire())!;
    const key = Buffer.from(hkdfSync("sha256", Buffer.from(code), captured.sid, "labc invite 1 seal", 32));
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(1, 8);
    const cipher = createCipheriv("aes-256-gcm", key, iv).setAAD(Buffer.from("labc invite 1 secret"));
    const body = Buffer.concat([cipher.update(JSON.stringify({ secret: SECRET })), cipher.final(), cipher.getAuthTag()]);
    const naive = { ...captured, sealed: [body] };
    expect(guessTests(naive, code)["a key derived from the guess opens a sealed box"]).toBe(true);
    expect(guessTests(naive, "7-zebra-wheat")["a key derived from the guess opens a sealed box"]).toBe(false);
  });
});
