import { createHash } from "node:crypto";
import { closeSync, constants, existsSync, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readlinkSync, renameSync, statSync, unlinkSync } from "node:fs";
import net from "node:net";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { debug } from "../log.js";

/**
 * A host's own links on Unix sockets, with `network.local_sockets = true` (issue 31;
 * docs/protocol.md#local-sockets; off by default, see docs/performance.md). A process that
 * takes connections on 127.0.0.1:P (a server's port, the router's root port) also takes them on a
 * Unix socket named for P, in a folder only its user can enter; a process of that user that dials
 * 127.0.0.1:P takes the socket when it answers, and TCP otherwise. The bytes are the same (the
 * local proof of a secret too); the kernel's path is shorter, and a call between two processes of
 * one host costs them less CPU (docs/performance.md, "Local links on Unix sockets").
 *
 * Why the name stands for 127.0.0.1:P exactly: only one process at a time takes connections
 * there, so only it may hold the name, and a dialer of that address reaches through the socket
 * the very process TCP would reach. A listener on another address (a LAN address, ::1) has no
 * socket, as another process may hold 127.0.0.1:P. The folder's checks keep another user from
 * planting a socket there; the name carries the host and the network namespace, so hosts that
 * share a home folder (NFS) or a state folder (namespaces) do not meet in it.
 */
export class LocalSockets {
  /** The names' common start: this host and network namespace. */
  private readonly prefix: string;

  constructor(
    /** The folder, as its path names it (for messages). */
    readonly dir: string,
    /** How this process reaches it: through its descriptor, where it can (see localSocketsIn). */
    private readonly reached: string,
  ) {
    let namespace = "";
    try {
      namespace = readlinkSync("/proc/self/ns/net");
    } catch {
      // No /proc (macOS): one network namespace.
    }
    this.prefix = createHash("sha256").update(`${hostname()}\n${namespace}`).digest("hex").slice(0, 12);
  }

  /** The socket's file name for 127.0.0.1:`port` (what the local proof binds to). */
  nameFor(port: number): string {
    return `${this.prefix}.${port}`;
  }

  /** Where this process reaches the socket for 127.0.0.1:`port`. */
  pathFor(port: number): string {
    return join(this.reached, this.nameFor(port));
  }

  /**
   * Whether a socket of this user has the name for 127.0.0.1:`port`: one another user put in while
   * the folder was open to others (before localSocketsIn closed it) is not dialed. Nobody else
   * can replace it after this look: the folder is this user's alone.
   */
  ours(port: number): boolean {
    try {
      const entry = lstatSync(this.pathFor(port));
      return entry.isSocket() && entry.uid === process.getuid!();
    } catch {
      return false;
    }
  }

  /** The socket for 127.0.0.1:`port` as messages name it. */
  shownFor(port: number): string {
    return join(this.dir, this.nameFor(port));
  }

  /**
   * Takes connections on the socket for 127.0.0.1:`port` as well, which the caller holds: undefined
   * when it cannot (the folder's file system takes no sockets, or without /proc a path too long),
   * and the port is then reached over TCP only.
   */
  async listen(port: number, onSocket: (socket: net.Socket) => void): Promise<LocalListener | undefined> {
    const path = this.pathFor(port);
    // Made under a name of its own, then renamed over whatever has the name: a socket left by a
    // process that died (it could not remove it), or one a process keeps without the port, which
    // the name no longer stands for. A rename leaves no moment without a socket at the name, and
    // Node removes the file it listened on when it closes (so it would remove the name for the
    // next holder): that file is gone by then.
    const made = `${path}.${process.pid}`;
    try {
      unlinkSync(made);
    } catch {
      // None left by an earlier process of this pid (the usual case).
    }
    const server = net.createServer(onSocket);
    const listening = await new Promise<boolean>((done) => {
      server.once("error", (error) => (debug("cannot take connections on %s: %s", made, error.message), done(false)));
      server.listen({ path: made, exclusive: true }, () => done(true));
    });
    if (!listening) return undefined;
    server.on("error", () => {});
    let ino: number;
    try {
      // Its inode taken before the rename: after it, another holder may have renamed its own over.
      ino = statSync(made).ino;
      renameSync(made, path);
    } catch (error) {
      debug("cannot name %s: %s", this.shownFor(port), (error as Error).message);
      server.close();
      return undefined;
    }
    let open = true;
    const remove = () => {
      try {
        // Only the file this process made: another may hold the port, and the name, since. (One
        // that renames its own over it between the look and the removal loses the name, and its
        // dialers take TCP.)
        if (statSync(path).ino === ino) unlinkSync(path);
      } catch {
        // Gone already.
      }
    };
    removeAtExit(remove);
    return {
      close: () => {
        if (!open) return;
        open = false;
        atExit.delete(remove);
        remove();
        server.close();
      },
    };
  }
}

export interface LocalListener {
  /** Takes no more connections and removes the socket; those open stay. */
  close(): void;
}

/**
 * The local sockets of a process whose state folder is `stateDir` (`$XDG_STATE_HOME/labc`), in
 * its `sockets` folder, made for this user alone (0700): undefined when that folder is another
 * user's or a link, and on Windows.
 *
 * The folder is opened once and then reached through its descriptor (/proc/self/fd/N): whoever
 * may write its parent can rename it and put a folder of theirs in its place, which a path would
 * lead to, and a descriptor does not. Without /proc (macOS) the path is used, and the parent
 * must then be this user's (or root's) and closed to others' writes (or sticky, as /tmp).
 */
export function localSocketsIn(stateDir: string): LocalSockets | undefined {
  if (process.platform === "win32" || typeof process.getuid !== "function") return undefined;
  const dir = join(stateDir, "sockets");
  let fd: number | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    const uid = process.getuid();
    const own = fstatSync(fd);
    if (own.uid !== uid) return noSockets(dir, "it is another user's", fd);
    if ((own.mode & 0o077) !== 0) {
      fchmodSync(fd, 0o700);
      // A file system may ignore it. What others put in while it was open, `ours` passes over.
      if ((fstatSync(fd).mode & 0o077) !== 0) return noSockets(dir, "its mode stays open to others", fd);
    }
    const pinned = `/proc/self/fd/${fd}`;
    if (existsSync(pinned)) return new LocalSockets(dir, pinned);
    const parent = lstatSync(dirname(dir));
    if ((parent.uid !== uid && parent.uid !== 0) || ((parent.mode & 0o022) !== 0 && (parent.mode & 0o1000) === 0)) {
      return noSockets(dir, "another user may write its parent folder", fd);
    }
    closeSync(fd);
    return new LocalSockets(dir, dir);
  } catch (error) {
    // ELOOP: a link in the folder's place.
    return noSockets(dir, (error as Error).message, fd);
  }
}

function noSockets(dir: string, why: string, fd?: number): undefined {
  if (fd !== undefined) closeSync(fd);
  debug("no local sockets in %s (%s): this host's links take TCP", dir, why);
  return undefined;
}

/** Sockets to remove when the process exits without closing them (a CLI's process.exit); hooked on the first. */
const atExit = new Set<() => void>();
let exitHooked = false;
function removeAtExit(remove: () => void): void {
  atExit.add(remove);
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => atExit.forEach((each) => each()));
}
