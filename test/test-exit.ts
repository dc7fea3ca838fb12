// What a test process must end however it ends: at its exit, and on the signals that would end
// it without an exit (Ctrl-C reaches every process of a run; vitest stops a worker with SIGTERM,
// then SIGKILL). While such work is registered, those signals end the process through
// `process.exit`, which runs it; with none, they keep their default.

const hooks = new Set<() => void>();
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
const atExit = () => {
  for (const hook of [...hooks]) hook();
};
const onSignal = (signal: NodeJS.Signals) => process.exit(128 + SIGNALS[signal]!);

/** Runs `hook` (synchronous: an exit handler cannot wait) if the process ends first; the function returned unregisters it. */
export function onTestExit(hook: () => void): () => void {
  if (hooks.size === 0) {
    process.on("exit", atExit);
    for (const signal of Object.keys(SIGNALS)) process.on(signal, onSignal);
  }
  hooks.add(hook);
  return () => {
    if (!hooks.delete(hook) || hooks.size > 0) return;
    process.removeListener("exit", atExit);
    for (const signal of Object.keys(SIGNALS)) process.removeListener(signal, onSignal);
  };
}
