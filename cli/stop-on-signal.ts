/** Long-running commands end cleanly on Ctrl-C or SIGTERM: close what they hold, then exit 0. */
export function stopOnSignal(close: () => Promise<void>): void {
  const stop = async () => {
    await close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
