import { NotPermittedError } from "../lib/errors.js";
import { warn } from "../lib/log.js";
import { inviteFilePath, removeInviteFile, writeInviteFile } from "../lib/invite/invite-file.js";
import { InviteServer, invitePortOf, type InviteOptions } from "../lib/invite/invite-server.js";
import { endText } from "./invite-command.js";

/** What the status page shows of this host's invite. */
export interface InviteView {
  open: boolean;
  /** The command to run on the new host, while open. */
  join?: string;
  expiresAt?: number;
  /** How the last invite ended, once it did. */
  ended?: string;
}

/**
 * The status page's "invite a host" (POST /api/invite {action: "open" | "revoke" | "state"}): the
 * router opens an invite as `labc invite` does (lib/invite/invite-server.ts), one at a time, and
 * keeps its file so that `labc invite --revoke` ends it too. Only for a request from this
 * computer (which proved it can read the secret by its token): an invite hands out the secret,
 * which the token of another computer does not give.
 */
export class InviteDesk {
  private current?: { server: InviteServer; file: string };
  private ended?: string;

  constructor(
    private readonly options: Omit<InviteOptions, "port" | "secret"> & { rootPort: number; secret: string | undefined; stateFolder: string },
  ) {}

  async act(body: Record<string, unknown>, far: boolean): Promise<InviteView> {
    if (far) throw new NotPermittedError("an invite hands out the network secret: open one on that computer (its own status page, or `labc invite` there)");
    const { secret } = this.options;
    if (!secret) throw new NotPermittedError("the network is open (no secret): there is nothing to hand over; `labc secret new` makes one");
    if (body.action === "open" && !this.current) await this.open(secret);
    else if (body.action === "revoke") this.current?.server.revoke("the status page");
    await new Promise((done) => setImmediate(done));
    return this.view();
  }

  close(): void {
    this.current?.server.revoke("the router stopped");
  }

  private view(): InviteView {
    const current = this.current;
    if (!current) return { open: false, ...(this.ended ? { ended: this.ended } : {}) };
    return { open: true, join: `labc join ${current.server.code.text}`, expiresAt: current.server.expiresAt };
  }

  private async open(secret: string): Promise<void> {
    const port = invitePortOf(this.options.rootPort);
    const server = await InviteServer.open({ ...this.options, port, secret });
    const file = inviteFilePath(this.options.stateFolder, port);
    writeInviteFile(file, { pid: process.pid, nameplate: server.code.nameplate, port, expiresAt: server.expiresAt, revokeToken: server.revokeToken });
    this.current = { server, file };
    this.ended = undefined;
    warn(`labc router: invite ${server.code.nameplate} opened from the status page`);
    void server.ended.then((end) => {
      removeInviteFile(file, server.revokeToken);
      this.ended = endText(end, server.code.nameplate).text.replace(/^labc: /, "");
      warn(`labc router: ${this.ended}`);
      if (this.current?.server === server) this.current = undefined;
    });
  }
}
