import { expect, test } from "vitest";
import { Metrics } from "../../lib/metrics.js";

test("a topic's counts are the same entry however often it is published, and a first topic that is no string does not throw", () => {
  const metrics = new Metrics();
  // A JavaScript caller's publish(undefined) is refused by the publication's checks: counting it must not throw first.
  expect(() => metrics.published(undefined as unknown as string)).not.toThrow();
  for (let i = 0; i < 3; i++) metrics.published("lab.t");
  metrics.published("lab.u");
  metrics.published("lab.t");
  metrics.delivered("lab.t", 2);
  expect(metrics.topics.get("lab.t")).toEqual({ published: 4, delivered: 2 });
  expect(metrics.topics.get("lab.u")).toEqual({ published: 1, delivered: 0 });
});
