import { randomInt } from "node:crypto";
import { INVITE_WORDS } from "./invite-words.js";

/**
 * An invite's code: `7-tiger-wheat`, a number and two words. The number names the invite (a
 * joining host asks the LAN who has invite 7; it is no secret), and the whole code is the
 * password of the exchange (lib/invite/invite-exchange.ts): two words of 1258 are one chance in
 * 1.6 million per guess, and each invite takes one guess.
 */
export interface InviteCode {
  /** The whole code, as both sides feed it to the PAKE. */
  text: string;
  /** The number before the words: 1 to 99. */
  nameplate: string;
}

const WORDS = new Set(INVITE_WORDS);

/** A fresh code: a number from 1 to 99 and two words, each drawn from a CSPRNG. */
export function newInviteCode(): InviteCode {
  const nameplate = String(randomInt(1, 100));
  const word = () => INVITE_WORDS[randomInt(INVITE_WORDS.length)]!;
  return { text: `${nameplate}-${word()}-${word()}`, nameplate };
}

/** A code as typed (`7 Tiger wheat`, ` 7-tiger-wheat `) in the one form both sides use. */
export function normalizeCode(typed: string): string {
  return typed.trim().toLowerCase().replace(/[\s_]+/g, "-").replace(/-+/g, "-");
}

/**
 * The code of `typed`, or a message saying what is wrong with it. A word not in the list is
 * caught here, before anything is sent: a typo that reached the inviting host would spend its
 * invite. The words typed are not repeated (a near miss is nearly the code).
 */
export function parseInviteCode(typed: string): InviteCode | string {
  const text = normalizeCode(typed);
  const match = /^(\d{1,3})-([a-z]+)-([a-z]+)$/.exec(text);
  if (!match) return "an invite code is a number and two words, like 7-tiger-wheat (what `labc invite` printed on the inviting host)";
  const unknown = [match[2]!, match[3]!].map((word, i) => (WORDS.has(word) ? undefined : i === 0 ? "first" : "second")).filter(Boolean);
  if (unknown.length > 0) return `the ${unknown.join(" and ")} word of the code is not one of the words invites use: check its spelling against what \`labc invite\` printed`;
  const nameplate = String(Number(match[1]));
  return { text: `${nameplate}-${match[2]}-${match[3]}`, nameplate };
}
