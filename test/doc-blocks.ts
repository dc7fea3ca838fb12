import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { expect } from "vitest";
import { PACKAGE_ROOT } from "../lib/paths.js";
import { installPacked } from "./packed.js";

/**
 * The code blocks of a Markdown document, for the tests that run what the docs say
 * (test/netns/tutorial.test.ts, test/integration/readme.test.ts). A block's info string says what
 * it is, after its language:
 *
 * - ```` ```sh computer1 ````: commands, one per line, run on that machine in its current folder
 *   (`cd` moves it); a line ending in ` &` runs in the background, as in a shell;
 * - ```` ```ts computer1:hello.ts ````: a file written on that machine, relative to its folder;
 * - ```` ```text ````: what the last command of the block before printed, line by line in order
 *   (it may print other lines between them), `…` standing for any text.
 *
 * Other blocks are not run.
 */
export interface DocBlock {
  kind: "commands" | "file" | "output";
  machine?: string;
  file?: string;
  text: string;
  /** Line in the document, for messages. */
  line: number;
}

export function docBlocks(markdown: string): DocBlock[] {
  const blocks: DocBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)(?: (\S+))?\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf("```", i + 1);
    if (end === -1) throw new Error(`line ${i + 1}: a code block that does not end`);
    const text = lines.slice(i + 1, end).join("\n");
    const [, language, target] = open;
    if (language === "sh" && target) blocks.push({ kind: "commands", machine: target, text, line: i + 1 });
    else if (language === "text") blocks.push({ kind: "output", text, line: i + 1 });
    else if (target?.includes(":")) {
      const at = target.indexOf(":");
      blocks.push({ kind: "file", machine: target.slice(0, at), file: target.slice(at + 1), text: `${text}\n`, line: i + 1 });
    }
    i = end;
  }
  return blocks;
}

/** The commands of a block: comments and blank lines left out, a trailing `# ...` comment cut. */
export function commandsOf(block: DocBlock): { command: string; background: boolean }[] {
  return block.text
    .split("\n")
    .map((line) => line.replace(/\s+#\s.*$/, "").trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => (line.endsWith(" &") ? { command: line.slice(0, -2).trim(), background: true } : { command: line, background: false }));
}

/** Whether every line of `expected` matches a line of `actual`, in order (`…` matches any text; runs of spaces any spaces). */
export function printed(expected: string, actual: string): string | undefined {
  const got = actual.split("\n");
  let at = 0;
  for (const want of expected.split("\n").filter((line) => line.trim() !== "")) {
    const pattern = new RegExp(
      `^${want
        .trim()
        .split("…")
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\s+/g, "\\s+"))
        .join(".*")}$`,
    );
    while (at < got.length && !pattern.test(got[at]!.trim())) at++;
    if (at === got.length) return `no line like "${want.trim()}" in:\n${actual}`;
    at++;
  }
  return undefined;
}

/** Where a document's commands run: a shell in a folder, to its end or in the background. */
export interface DocMachine {
  cwd: string;
  shell(command: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string; cwd: string }>;
  background(command: string, cwd: string): Promise<{ output: () => string }>;
}

/**
 * A machine whose shell runs under `prefix` (`[]` here; `["ip", "netns", "exec", ns]` in a
 * namespace) with `env`, starting in `cwd`; `started` is told of every process, to end them.
 */
export function shellMachine(prefix: string[], env: NodeJS.ProcessEnv, cwd: string, started: (child: ChildProcess) => void): DocMachine {
  const sh = (script: string, dir: string, stdio: ("ignore" | "pipe")[]) => {
    const child = spawn(prefix[0] ?? "sh", [...prefix.slice(1), ...(prefix.length ? ["sh"] : []), "-c", script], { cwd: dir, env, stdio });
    started(child);
    return child;
  };
  return {
    cwd,
    shell: (command, dir) =>
      new Promise((resolve, reject) => {
        // The folder it ends in comes back on fd 3, so that a `cd` carries over to the next command.
        const child = sh(`${command}\nstatus=$?\necho "$PWD" >&3\nexit $status`, dir, ["ignore", "pipe", "pipe", "pipe"]);
        let stdout = "";
        let stderr = "";
        let ended = "";
        child.stdout!.on("data", (chunk) => (stdout += chunk));
        child.stderr!.on("data", (chunk) => (stderr += chunk));
        child.stdio[3]!.on("data", (chunk) => (ended += chunk));
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`${command} did not end in 60 s: ${stdout}${stderr}`));
        }, 60_000);
        child.once("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr, cwd: ended.trim() || dir });
        });
      }),
    background: (command, dir) =>
      new Promise((resolve, reject) => {
        const child = sh(`exec ${command}`, dir, ["ignore", "pipe", "pipe"]);
        let output = "";
        child.stdout!.on("data", (chunk) => (output += chunk));
        child.stderr!.on("data", (chunk) => (output += chunk));
        // Resolved once it prints something (a server its "serving" line, `labc subscribe` its "subscribed").
        const timer = setTimeout(() => reject(new Error(`${command} printed nothing in 30 s`)), 30_000);
        const printing = () => {
          clearTimeout(timer);
          resolve({ output: () => output });
        };
        child.stdout!.once("data", printing);
        child.stderr!.once("data", printing);
        child.once("exit", (code) => reject(new Error(`${command} exited (${code}): ${output}`)));
      }),
  };
}

/**
 * Runs a document of this checkout (`docs/tutorial.md`) block by block on its machines and
 * checks each output block; blocks of other machines are left to another test. `npm install labc`, which would need the npm registry, installs
 * the packed `tarball` instead. Resolves with what each background command printed, in order.
 */
export async function runDocument(document: string, machines: Map<string, DocMachine>, tarball: string): Promise<{ output: () => string }[]> {
  const blocks = docBlocks(readFileSync(join(PACKAGE_ROOT, document), "utf8"));
  const started: { output: () => string }[] = [];
  let last: { what: string; output: string } | undefined;
  let skipped = false;
  for (const [index, block] of blocks.entries()) {
    const where = `${document}:${block.line}`;
    // Blocks of machines another test runs, and their output.
    if (block.kind !== "output") skipped = !machines.has(block.machine!);
    if (skipped) continue;
    if (block.kind === "output") {
      expect(last, `${where}: output with no command before it`).toBeDefined();
      expect(printed(block.text, last!.output), `${where}: ${last!.what}`).toBeUndefined();
      last = undefined;
      continue;
    }
    const machine = machines.get(block.machine!)!;
    if (block.kind === "file") {
      const file = resolve(machine.cwd, block.file!);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, block.text);
      continue;
    }
    for (const { command, background } of commandsOf(block)) {
      if (command === "npm install labc") {
        installPacked(tarball, machine.cwd);
        last = { what: command, output: "" };
      } else if (background) {
        const process = await machine.background(command, machine.cwd);
        started.push(process);
        // Its first line, then whatever follows it at once.
        await new Promise((done) => setTimeout(done, 300));
        last = { what: command, output: process.output() };
      } else {
        const result = await machine.shell(command, machine.cwd);
        const output = result.stdout + result.stderr;
        machine.cwd = result.cwd;
        last = { what: `${command} (exit code ${result.code})`, output };
        // A command that fails must be one whose output the document shows next.
        if (result.code !== 0) expect(blocks[index + 1]?.kind, `${where}: ${command} failed (${result.code}): ${output}`).toBe("output");
      }
    }
  }
  return started;
}
