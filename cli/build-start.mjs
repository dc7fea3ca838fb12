// `npm run build`, last step: dist/cli.cjs, cli/network-commands.ts in one CommonJS bundle,
// which bin/labc.js runs the network commands from (call, map, publish, subscribe) with a V8 code
// cache. Node 20 has no compile cache for modules (module.enableCompileCache is Node 22), but a
// vm.Script takes V8's cached data: with it, `labc call` skips compiling ~25 ES modules.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { build } from "esbuild";

const { outputFiles } = await build({
  entryPoints: ["cli/network-commands.ts"],
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  outfile: "dist/cli.cjs",
  write: false,
  alias: { labc: "./lib/index.ts" },
  external: ["bonjour-service", "esbuild", "@nats-io/transport-node"],
  // bin/labc.js passes the bundle's own URL: lib/paths.ts finds the package from it.
  define: { "import.meta.url": "__labcUrl" },
  logLevel: "warning",
  // A third less source to read and code to deserialize: 1.7 ms of each command's start (issue
  // 31). Names stay, so a stack trace still names its functions; their lines are those of this
  // bundle, and `node dist/cli.js <command>` runs the same code from source-mapped chunks.
  minifyWhitespace: true,
  minifySyntax: true,
  // Node prints the source line of an uncaught error: a line of the bundle, not all of it.
  lineLimit: 160,
});
// A vm.Script cannot run import() without --experimental-vm-modules: bin/labc.js passes an
// import of its own (the specifiers are absolute or packages, so bin/ resolves them as dist/ does).
// ASCII only, so that bin/labc.js reads it as latin1 into a one-byte string, a quarter of the time
// of decoding UTF-8 (esbuild escapes code's non-ASCII already: what remains is in comments).
const text = outputFiles[0].text.replace(/^#!.*\n/, "").replace(/[^\x00-\x7f]/g, "?");
const dynamic = /(?<![\w$.])import\(/g;
const count = text.match(dynamic)?.length ?? 0;
if (count === 0 || /__labcImport/.test(text)) throw new Error("cli/build-start.mjs: expected import() calls to rename, and no __labcImport yet");
const body = text.replace(dynamic, "__labcImport(");
// V8 checks cached code against the source's length only: bin/labc.js names a cache by this id.
const id = createHash("sha256").update(body).digest("hex").slice(0, 16);
writeFileSync("dist/cli.cjs", `//labc-start ${id}\n${body}`);
