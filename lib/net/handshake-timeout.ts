import { nowMs } from "../clock.js";

/** How late a timer may fire and still have measured the peer, not this process. */
const LATE_MS = 50;
/** How many times a dial's wait starts again because this process was busy. */
const MAX_RESTARTS = 3;

/**
 * A handshake's timeout (a dial's connect, its TLS handshake or local proof, a NATS server's
 * first line; an accepted connection's TLS handshake or local proof) that a busy process does
 * not trip. In a turn of the event loop timers run before reads, so a plain timer gives up on a
 * peer whose answer waits to be read whenever the process ran something else past the deadline:
 * a lab's script publishing a few hundred thousand samples in one loop right after its first
 * publish died on "no labc router answers" with its router running (over TCP Node does not even
 * send the connect before that loop ends), and a server whose handler computed for longer than
 * `limits.hello_timeout` refused the members that came meanwhile. So the wait starts at the
 * first turn of the loop after the caller's own code; a timer that fires more than LATE_MS late
 * starts it again from then (up to MAX_RESTARTS times); and the verdict waits for that turn's
 * reads (`setImmediate`), as the inbound guard's frame timeout and request timeouts do. A peer
 * that does not answer is given up `ms` after the wait began, at worst (a process late at every
 * deadline) about `1 + restarts` times that plus its stalls. The accepting side allows one
 * restart: a stranger who sends nothing gains from a busy server at most one more wait. Returns
 * the cancel.
 */
export function handshakeTimeout(ms: number, expired: () => void, restarts = MAX_RESTARTS): () => void {
  let due = 0;
  let timer: NodeJS.Timeout | undefined;
  let verdict: NodeJS.Immediate | undefined;
  const wait = () => {
    due = nowMs() + ms;
    timer = setTimeout(fire, ms);
  };
  const fire = () => {
    if (nowMs() - due > LATE_MS && restarts-- > 0) return wait();
    verdict = setImmediate(expired);
  };
  let start: NodeJS.Immediate | undefined = setImmediate(() => {
    start = undefined;
    wait();
  });
  return () => {
    if (start) clearImmediate(start);
    clearTimeout(timer);
    if (verdict) clearImmediate(verdict);
  };
}
