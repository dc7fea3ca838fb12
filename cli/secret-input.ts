import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";

/**
 * Where `labc secret set` takes the secret from: never an argument, which every user of the
 * computer reads in `ps` (and which stays in the shell's history). From `--from-file`, else from
 * stdin: a pipe or a redirected file as it is (`labc secret show | ssh host labc secret set`,
 * `labc secret set < file`), a terminal through a prompt that does not show what is typed.
 */

export interface SecretInput {
  text: string;
  /** Where it came from, for error messages: the file, "stdin" or "the prompt". */
  origin: string;
}

/** No secret could be read: said as a usage error (exit code 2). */
export class SecretInputError extends Error {}

const HOW =
  "pipe it in (`labc secret show | ssh <this host> labc secret set`, or `labc secret set < file`), " +
  "give a file (`labc secret set --from-file file`), or run `labc secret set` in a terminal and paste it";

export async function readSecretInput(options: { fromFile?: string } = {}): Promise<SecretInput> {
  if (options.fromFile !== undefined) {
    const file = options.fromFile;
    try {
      return { text: await readFile(file, "utf8"), origin: file };
    } catch (error) {
      throw new SecretInputError(`cannot read the secret from ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  if (process.stdin.isTTY) return { text: await promptHidden(), origin: "the prompt" };
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new SecretInputError(`labc secret set read no secret on stdin: ${HOW}`);
  return { text, origin: "stdin" };
}

/**
 * One line from the terminal, not echoed: readline puts the terminal in raw mode (the terminal
 * echoes nothing) and writes its own echo to an output that swallows it.
 */
async function promptHidden(): Promise<string> {
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  const reader = createInterface({ input: process.stdin, output: muted, terminal: true });
  // Asked once the terminal is raw: a secret pasted at the prompt is never echoed.
  process.stderr.write("labc: paste the network secret (what `labc secret show` prints on a host that has it; it is not shown): ");
  try {
    const line = await new Promise<string>((resolve, reject) => {
      reader.once("line", resolve);
      reader.once("close", () => reject(new SecretInputError("labc secret set read no secret at its prompt (input ended); nothing was stored")));
      // Raw mode turns Ctrl-C into a key: it still means stop, and nothing is stored.
      reader.once("SIGINT", () => {
        process.stderr.write("\nlabc: interrupted; nothing was stored\n");
        process.exit(130);
      });
    });
    if (line.trim() === "") throw new SecretInputError("labc secret set read an empty line at its prompt; nothing was stored");
    return line;
  } finally {
    reader.close();
    process.stderr.write("\n");
  }
}
