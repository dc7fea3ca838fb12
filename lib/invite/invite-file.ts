import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * What an open invite leaves on its host for `labc invite --revoke` (and the status page) to find
 * it: its number, port, end, and the token that revokes it, in the state folder, readable by its
 * owner only. Removed when the invite ends.
 */
export interface InviteFile {
  pid: number;
  nameplate: string;
  port: number;
  expiresAt: number;
  revokeToken: string;
}

export function inviteFilePath(stateFolder: string, port: number): string {
  return join(stateFolder, `invite-${port}.json`);
}

export function writeInviteFile(file: string, invite: InviteFile): void {
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, `${JSON.stringify(invite)}\n`, { mode: 0o600 });
}

/** The open invite's file, or undefined when there is none or it is not one of ours. */
export function readInviteFile(file: string): InviteFile | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const invite = JSON.parse(readFileSync(file, "utf8")) as InviteFile;
    return typeof invite.revokeToken === "string" && Number.isInteger(invite.port) ? invite : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the file if it is still this invite's (another may have opened since). */
export function removeInviteFile(file: string, revokeToken: string): void {
  if (readInviteFile(file)?.revokeToken === revokeToken) rmSync(file, { force: true });
}
