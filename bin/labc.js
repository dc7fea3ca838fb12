#!/usr/bin/env node
// The `labc` command. It runs the compiled CLI: `npm install` builds it (the "prepare" script).
// A CommonJS script (bin/package.json): Node starts one without its ES module loader, which the
// network commands below never need.
"use strict";
const { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require("node:fs");
const { createRequire } = require("node:module");
const { homedir } = require("node:os");
const { dirname, join } = require("node:path");
const { pathToFileURL } = require("node:url");
const vm = require("node:vm");

const main = join(__dirname, "..", "dist", "cli.js");
if (!existsSync(main)) {
  process.stderr.write("labc: dist/ is missing; run `npm install` (or `npm run build`) in the labc folder\n");
  process.exit(1);
}
// reflect-metadata is loaded when a command first needs it, not at start (lib/decorators.ts).
globalThis[Symbol.for("labc.reflectMetadataOnDemand")] = true;

// The commands that only talk to the network, whose start is most of their time (issue 31): they
// run from dist/cli.cjs (cli/network-commands.ts, built by cli/build-start.mjs) with V8's cached
// code of an earlier run. The others, `serve` first (its services import labc and must meet this
// process's runtime), import dist/cli.js and its chunks.
const NETWORK_COMMANDS = new Set(["call", "map", "publish", "subscribe"]);

/** Runs the command from dist/cli.cjs with a code cache: its promise, or false when it cannot. */
function runCached(command) {
  const file = join(__dirname, "..", "dist", "cli.cjs");
  let source;
  let cacheFile;
  try {
    source = readFileSync(file, "latin1"); // ASCII (cli/build-start.mjs)
    // V8 checks a cache against the source's length only: the name holds the bundle's content id.
    const id = /^\/\/labc-start ([0-9a-f]+)\n/.exec(source)?.[1];
    if (!id) return false;
    const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "labc");
    cacheFile = join(dir, `cli-${command}-${id}-${process.version}-${process.arch}.v8`);
  } catch {
    return false;
  }
  let cached;
  try {
    cached = readFileSync(cacheFile);
  } catch {
    // The first run of this command with this build: the cache is written as it exits. Where it
    // cannot be (a read-only home), the chunks start faster than the bundle without its cache.
    try {
      mkdirSync(dirname(cacheFile), { recursive: true });
      accessSync(dirname(cacheFile), constants.W_OK);
    } catch {
      return false;
    }
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname, __labcUrl, __labcImport) {"use strict";${source}\n})`;
  const script = new vm.Script(wrapped, { filename: file, cachedData: cached });
  if (!cached || script.cachedDataRejected) {
    // Once the command ran, the cache holds the functions it compiled on the way too.
    process.once("exit", () => {
      try {
        // Other builds' caches: the three newest stay (two installs of labc may take turns, a
        // global one and a project's), older ones go (each build leaves one).
        const dir = dirname(cacheFile);
        const prefix = `cli-${command}-`;
        const others = readdirSync(dir)
          .filter((name) => name.startsWith(prefix) && name.endsWith(".v8"))
          .map((name) => ({ name, mtime: statSync(join(dir, name)).mtimeMs }))
          .sort((a, b) => b.mtime - a.mtime);
        for (const { name } of others.slice(3)) rmSync(join(dir, name), { force: true });
        const partial = `${cacheFile}.${process.pid}`;
        writeFileSync(partial, script.createCachedData());
        renameSync(partial, cacheFile);
      } catch {
        // no cache this time: the next run compiles again
      }
    });
  }
  const bundle = { exports: {} };
  const load = script.runInThisContext();
  load.call(bundle.exports, bundle.exports, createRequire(file), bundle, file, dirname(file), pathToFileURL(file).href, (specifier) => import(specifier));
  return bundle.exports.run();
}

const command = process.argv[2];
if (!(NETWORK_COMMANDS.has(command) && runCached(command))) import(pathToFileURL(main).href);
