/**
 * How far a job of many items is, on stderr: a bar redrawn in place on a terminal, or a plain
 * line now and then when stderr is a file or a pipe (a log gets lines, not carriage returns).
 */
export class Progress {
  private readonly started = performance.now();
  private lastLine = -Infinity;
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly total: number,
    /** Milliseconds between plain lines. */
    private readonly everyMs = 1000,
  ) {}

  update(done: number, failed: number): void {
    const now = performance.now();
    // A terminal is redrawn ten times a second at most; a log gets a line a second.
    if (done < this.total && now - this.lastLine < (this.tty ? 100 : this.everyMs)) return;
    this.lastLine = now;
    const line = this.describe(done, failed, now);
    if (this.tty) process.stderr.write(`\r${line}\x1b[K${done === this.total ? "\n" : ""}`);
    else process.stderr.write(`labc: ${line}\n`);
  }

  private describe(done: number, failed: number, now: number): string {
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const left = this.total - done;
    const eta = done === this.total ? `took ${clock(seconds)}` : rate > 0 ? `ETA ${clock(left / rate)}` : "ETA -";
    const parts = [`${this.label} ${this.bar(done)}${done}/${this.total}`, `${rate.toFixed(rate < 10 ? 1 : 0)}/s`, eta];
    if (failed) parts.push(`${failed} failed`);
    return parts.join("  ");
  }

  private bar(done: number): string {
    if (!this.tty) return "";
    const width = 24;
    const full = this.total ? Math.round((done / this.total) * width) : width;
    return `[${"#".repeat(full)}${".".repeat(width - full)}] `;
  }
}

/** Seconds as `m:ss` (or `h:mm:ss`). */
function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const [h, m, r] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}
