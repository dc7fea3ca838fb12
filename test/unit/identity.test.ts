import { expect, test } from "vitest";
import { hostId } from "../../lib/identity.js";

test("machines cloned from one image (one machine id) get different host ids from different names", () => {
  expect(hostId("pi-1")).toMatch(/^[0-9a-f]{12}$/);
  expect(hostId("pi-1")).toBe(hostId("pi-1"));
  expect(hostId("pi-2")).not.toBe(hostId("pi-1"));
});
