import { createHash } from "node:crypto";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { basename, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { cacheDir } from "../config.js";
import type { Message, Plugin } from "esbuild";
import { ServiceLoadError } from "../errors.js";
import { LABC_URL } from "../paths.js";
import { SOURCE_SIGNATURES, typesInSource } from "../signature.js";

/**
 * `labc` is bound to this copy; every other package is resolved from the service's own folder
 * now, and imported by its full path, since the module is written elsewhere (the cache).
 */
const labcPlugin: Plugin = {
  name: "labc",
  setup(build) {
    build.onResolve({ filter: /^labc$/ }, () => ({ path: LABC_URL, external: true }));
    build.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === RESOLVING || isBuiltin(args.path)) return undefined;
      const found = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: RESOLVING });
      if (found.errors.length) return { errors: found.errors };
      return { path: pathToFileURL(found.path).href, external: true };
    });
  },
};
const RESOLVING = Symbol("labc resolving");

/** Changes when what a build holds changes (2: source signatures), so that older builds are redone. */
const BUILD_FORMAT = 2;

const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/**
 * Writes a file whole or not at all: another process starting the same service at this moment
 * reads the old file or the new one, never half of one.
 */
function writeAtomically(file: string, data: string | Uint8Array): void {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(temporary, data);
  renameSync(temporary, file);
}

function describe(error: Message): string {
  const where = error.location ? ` (${error.location.file}:${error.location.line}:${error.location.column})` : "";
  return `${error.text}${where}`;
}

/**
 * The module with what its TypeScript sources declare about their decorated methods' parameters
 * (types, `?`), which compiling strips, added to the table lib/signature.ts reads; placed before
 * the source map's comment, so that no line of the module moves.
 */
function withSignatures(code: string, files: string[]): string {
  const signatures = files.filter((file) => /\.[cm]?tsx?$/.test(file)).flatMap((file) => typesInSource(readFileSync(file, "utf8")));
  if (signatures.length === 0) return code;
  const table = `(globalThis[Symbol.for(${JSON.stringify(SOURCE_SIGNATURES.description)})] ??= []).push(...${JSON.stringify(signatures)});\n`;
  const map = code.lastIndexOf("//# sourceMappingURL=");
  return map === -1 ? code + table : code.slice(0, map) + table + code.slice(map);
}

/**
 * A service's entry compiled to one JavaScript module (its own files bundled, packages left to
 * Node, `labc` bound to this copy), kept in the user's cache folder (`~/.cache/labc/builds`, one
 * folder per entry, never in their project) and reused while none of its files changed. Loading
 * it needs no TypeScript loader: a service starts in milliseconds and carries no compiler in
 * its memory.
 */
export async function compiled(entry: string): Promise<string> {
  const outDir = join(cacheDir(), "builds", createHash("sha256").update(resolve(entry)).digest("hex").slice(0, 16));
  const name = basename(entry).replace(/\.[cm]?[jt]sx?$/, "");
  const out = join(outDir, `${name}.mjs`);
  const record = join(outDir, `${name}.inputs.json`);
  try {
    const built = JSON.parse(readFileSync(record, "utf8")) as { labc: string; format?: number; inputs: Record<string, string> };
    // Built against another copy of labc (the sources in tests, another install), or by an older one: build again.
    const current = built.labc === LABC_URL && built.format === BUILD_FORMAT && Object.entries(built.inputs).every(([file, hash]) => sha(file) === hash);
    if (current) return out;
  } catch {
    // not built yet, or a file is gone: build
  }
  mkdirSync(outDir, { recursive: true });
  // Loaded only to build: a service started from its cache never carries the compiler.
  const { build } = await import("esbuild");
  let result;
  try {
    result = await build({
      entryPoints: [entry],
      outfile: out,
      write: false,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      sourcemap: "inline",
      metafile: true,
      logLevel: "silent",
      plugins: [labcPlugin],
    });
  } catch (error) {
    const errors = (error as { errors?: Message[] }).errors ?? [];
    const reason = errors.length ? errors.map(describe).join("; ") : (error as Error).message;
    throw new ServiceLoadError(entry, `does not load: ${reason}`, error);
  }
  const files = Object.keys(result.metafile!.inputs).map((input) => resolve(input));
  for (const file of result.outputFiles!) writeAtomically(file.path, withSignatures(file.text, files));
  // The module first: a record never names inputs of a module not yet in place.
  const inputs = Object.fromEntries(files.map((file) => [file, sha(file)]));
  writeAtomically(record, JSON.stringify({ labc: LABC_URL, format: BUILD_FORMAT, inputs }));
  return out;
}
