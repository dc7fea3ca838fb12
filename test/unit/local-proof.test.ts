import { expect, test } from "vitest";
import { localProof, socketBinding } from "../../lib/trust/local-proof.js";
import { networkKey } from "../../lib/trust/network-key.js";
import { isLoopback } from "../../lib/trust/own-address.js";

// docs/protocol.md#local-links: the vector another language checks itself against.
test("the local proof's key and both proofs match the protocol's test vector", () => {
  const key = networkKey(`labc1_${Buffer.from([...Array(32).keys()]).toString("base64url")}`);
  expect(key.id).toBe("f3c09f90b4c0959a");
  const localKey = key.localKeyFor("f3c09f90b4c0959a")!;
  expect(localKey.toString("hex")).toBe("0a65689de1c787e2ee2fadc56da8729175480590dec6336e83931b26d4f1c8d4");
  const [clientNonce, serverNonce] = [Buffer.alloc(32, 0x11), Buffer.alloc(32, 0x22)];
  const tuple = "127.0.0.1 40312 127.0.0.1 55555";
  expect(localProof(localKey, "server", clientNonce, serverNonce, tuple).toString("hex")).toBe("38c0ed612b61e448c708530405e0b4f37163e9c35c4db5f10d5dc6ceec3d2cbc");
  expect(localProof(localKey, "client", clientNonce, serverNonce, tuple).toString("hex")).toBe("347d1617e5d55ee89c0bb5a6817d6d683f98b25eb6c059134a058c2cc9ae4444");
  // Over one of the host's Unix sockets the proofs bind its name (docs/protocol.md#local-sockets).
  const socket = socketBinding("0123456789ab.55555");
  expect(socket).toBe("unix 0123456789ab.55555");
  expect(localProof(localKey, "server", clientNonce, serverNonce, socket).toString("hex")).toBe("d4c36ca3ca44268bdbcb0999de1db7c44ded92d6eb2e791ffa901203ec776175");
  expect(localProof(localKey, "client", clientNonce, serverNonce, socket).toString("hex")).toBe("d6f1f8156d882c9e2999e6b8274e15d91c44937e9da1d7230c726716c39bf820");
  // Another key id is not ours: nothing to prove with.
  expect(key.localKeyFor("0000000000000000")).toBeUndefined();
});

test("only a loopback address counts as one: a host name that starts like one does not", () => {
  for (const address of ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"]) expect(isLoopback(address), address).toBe(true);
  for (const address of ["127.evil.example", "localhost", "10.0.0.1", "::ffff:10.0.0.1", "fe80::1", ""]) expect(isLoopback(address), address).toBe(false);
});
