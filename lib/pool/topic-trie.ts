import { BadArgumentsError } from "../errors.js";

/** `*` matches exactly one word; `#` matches all remaining words (zero or more), last only. */
export const ONE_WORD = "*";
export const REST = "#";

/** Words are separated by `.`; `/` is accepted as the same separator (`lab/temp` = `lab.temp`). */
export function topicWords(topic: string): string[] {
  return topic.split(/[./]/);
}

export function checkPattern(pattern: string): string[] {
  const words = topicWords(pattern);
  words.forEach((word, i) => {
    if (word === "") throw new BadArgumentsError(`topic pattern "${pattern}" has an empty word`);
    if (word === REST && i !== words.length - 1) {
      throw new BadArgumentsError(`topic pattern "${pattern}": "${REST}" may only be the last word`);
    }
    if (word !== REST && word !== ONE_WORD && (word.includes(REST) || word.includes(ONE_WORD))) {
      throw new BadArgumentsError(`topic pattern "${pattern}": wildcards must be whole words`);
    }
  });
  return words;
}

export function checkTopic(topic: string): string[] {
  const words = topicWords(topic);
  for (const word of words) {
    if (word === "") throw new BadArgumentsError(`topic "${topic}" has an empty word`);
    if (word.includes(REST) || word.includes(ONE_WORD)) {
      throw new BadArgumentsError(`topic "${topic}": wildcards belong in subscriptions, not in published topics`);
    }
  }
  return words;
}

/**
 * How a queue-group subscription is written where topics are listed (announcements, `labc ls`):
 * `jobs.resize #workers`. No pattern contains ` #` (a `#` is a whole word or nothing), so a
 * plain pattern is never taken for one.
 */
const GROUP_MARK = " #";

export function checkGroup(group: string): void {
  if (!/^[\w.-]{1,128}$/.test(group)) {
    throw new BadArgumentsError(`queue group "${group}": use 1 to 128 letters, digits, "_", "-" or "."`);
  }
}

/** What a subscription is announced as: its pattern, with its queue group when it has one. */
export function subscriptionKey(pattern: string, group: string | undefined): string {
  if (group === undefined) return pattern;
  checkGroup(group);
  return `${pattern}${GROUP_MARK}${group}`;
}

/** A subscription key taken apart (see `subscriptionKey`). */
export function parseSubscription(key: string): { pattern: string; group: string | undefined } {
  const at = key.lastIndexOf(GROUP_MARK);
  return at < 0 ? { pattern: key, group: undefined } : { pattern: key.slice(0, at), group: key.slice(at + GROUP_MARK.length) };
}

interface Node<T> {
  // Map, not an object: a word such as "__proto__" or "constructor" is just a word.
  children: Map<string, Node<T>>;
  values: Set<T> | null;
}

const newNode = <T>(): Node<T> => ({ children: new Map(), values: null });

/** No topic asked yet (not `undefined`, which a JavaScript caller may pass and must see refused). */
const NONE = Symbol("none");

/** Topics whose matches are remembered at most; beyond it the memory starts over. */
const CACHED_TOPICS = 1024;

/** Subscriptions indexed by pattern; `match` finds every value whose pattern covers a topic. */
export class TopicTrie<T> {
  private readonly root: Node<T> = newNode();
  /** `matches` of recent topics: publications repeat their topics, subscriptions change rarely. */
  private readonly cache = new Map<string, readonly T[]>();
  /** The topic `matches` was asked last and its answer: a stream publishes one topic over and over. */
  private lastTopic: string | typeof NONE = NONE;
  private lastFound: readonly T[] = [];

  add(pattern: string, value: T): void {
    this.forget();
    let node = this.root;
    for (const word of checkPattern(pattern)) {
      let child = node.children.get(word);
      if (!child) node.children.set(word, (child = newNode()));
      node = child;
    }
    (node.values ??= new Set()).add(value);
  }

  /** Removes one value from a pattern, pruning nodes left empty. Returns whether it was there. */
  remove(pattern: string, value: T): boolean {
    this.forget();
    const words = topicWords(pattern);
    const trail: Node<T>[] = [this.root];
    for (const word of words) {
      const child = trail[trail.length - 1]!.children.get(word);
      if (!child) return false;
      trail.push(child);
    }
    const leaf = trail[trail.length - 1]!;
    if (!leaf.values?.delete(value)) return false;
    if (leaf.values.size === 0) leaf.values = null;
    for (let i = words.length; i > 0; i--) {
      const node = trail[i]!;
      if (node.values || node.children.size) break;
      trail[i - 1]!.children.delete(words[i - 1]!);
    }
    return true;
  }

  match(topic: string, into: Set<T> = new Set()): Set<T> {
    this.walk(this.root, checkTopic(topic), 0, into);
    return into;
  }

  /** Like `match`, as an array remembered until the subscriptions change: for hot paths. */
  matches(topic: string): readonly T[] {
    if (topic === this.lastTopic) return this.lastFound;
    let found = this.cache.get(topic);
    if (!found) {
      found = [...this.match(topic)];
      if (this.cache.size >= CACHED_TOPICS) this.cache.clear();
      this.cache.set(topic, found);
    }
    this.lastTopic = topic;
    this.lastFound = found;
    return found;
  }

  private forget(): void {
    this.cache.clear();
    this.lastTopic = NONE;
    this.lastFound = [];
  }

  private walk(node: Node<T>, words: string[], at: number, into: Set<T>): void {
    const rest = node.children.get(REST);
    if (rest?.values) for (const value of rest.values) into.add(value);
    if (at === words.length) {
      if (node.values) for (const value of node.values) into.add(value);
      return;
    }
    const exact = node.children.get(words[at]!);
    if (exact) this.walk(exact, words, at + 1, into);
    const one = node.children.get(ONE_WORD);
    if (one) this.walk(one, words, at + 1, into);
  }
}
