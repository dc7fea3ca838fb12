/** How late a timer may fire and still have measured the peer, not this process. */
const LATE_MS = 50;
/** How many times a dial's wait starts again because this process was busy. */
const MAX_RESTARTS = 3;

/**
 * A dial's timeout that a busy process does not trip: `expired` runs once `ms` have passed
 * with the event loop free to read the answer. In a turn of the loop timers run before I/O, so
 * a timer that fires late (the process ran something else past the deadline, such as a user's
 * loop publishing a few hundred thousand times before its first link is up) would give up on a
 * connect or a handshake whose answer is already waiting to be read: a lab's script then died
 * on "no labc router answers" with its router running. Then the wait starts again from that
 * moment, up to MAX_RESTARTS times; a peer that does not answer is still given up `ms` after
 * the process was last free to notice. Returns the cancel.
 */
export function dialTimeout(ms: number, expired: () => void): () => void {
  let restarts = 0;
  let due = Date.now() + ms;
  const fire = () => {
    const now = Date.now();
    if (now - due > LATE_MS && restarts++ < MAX_RESTARTS) {
      due = now + ms;
      timer = setTimeout(fire, ms);
      return;
    }
    expired();
  };
  let timer = setTimeout(fire, ms);
  return () => clearTimeout(timer);
}
