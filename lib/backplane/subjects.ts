import { ONE_WORD, REST, topicWords } from "../pool/topic-trie.js";

/**
 * The NATS subjects of a labc network on the backplane (docs/backplane.md), all under
 * `labc.<realm>.`: labc networks that share a NATS server stay apart by realm.
 */
export class Subjects {
  readonly prefix: string;

  constructor(realm: string) {
    this.prefix = `labc.${realm.split(".").map(escapeWord).join(".")}`;
  }

  /** A gateway's site: its beats and, on each change, its servers. */
  site(hostId: string): string {
    return `${this.prefix}.hosts.${escapeWord(hostId)}`;
  }

  /** Every site's beats and servers. */
  get sites(): string {
    return `${this.prefix}.hosts.*`;
  }

  /** A gateway arriving asks every other for its beat, answered to the reply subject it gives. */
  get greeting(): string {
    return `${this.prefix}.hello`;
  }

  /** Asks a gateway for its site's servers (request/reply). */
  pool(hostId: string): string {
    return `${this.prefix}.pool.${escapeWord(hostId)}`;
  }

  /** Requests (and targeted publications) for the servers behind one gateway. */
  to(hostId: string): string {
    return `${this.prefix}.req.${escapeWord(hostId)}`;
  }

  /** Frames for one server that takes them from NATS itself, a process on a gateway's host
   * (docs/backplane.md#direct-calls); its answers go to each caller's reply subject. */
  server(serverId: string): string {
    return `${this.prefix}.srv.${escapeWord(serverId)}`;
  }

  /** Where a publication on `topic` goes to every other site. */
  publication(topic: string): string {
    return `${this.prefix}.pub.${topicWords(topic).map(escapeWord).join(".")}`;
  }

  /**
   * The subjects that carry every topic `pattern` matches: `*` stays a one-token wildcard;
   * labc's `#` is zero or more words and NATS's `>` one or more, so `a.#` needs `a` and `a.>`.
   */
  publications(pattern: string): string[] {
    const words = topicWords(pattern);
    const mapped = words.map((word) => (word === ONE_WORD ? "*" : word === REST ? ">" : escapeWord(word)));
    const subject = `${this.prefix}.pub.${mapped.join(".")}`;
    if (words.at(-1) !== REST || words.length === 1) return [subject];
    return [`${this.prefix}.pub.${mapped.slice(0, -1).join(".")}`, subject];
  }
}

/**
 * A topic word as one NATS token: letters, digits, `_` and `-` as they are, every other byte of
 * its UTF-8 as `~` and two hex digits (`room 1` → `room~201`, `~` → `~7e`). NATS tokens may not
 * hold `.`, `*`, `>` or white space; this keeps every word one token, and different words
 * different tokens.
 */
export function escapeWord(word: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(word)) return word;
  let out = "";
  for (const char of word) {
    if (/[A-Za-z0-9_-]/.test(char)) out += char;
    else for (const byte of Buffer.from(char)) out += `~${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}
