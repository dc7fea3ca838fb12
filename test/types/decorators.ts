// Which members the decorators accept, checked by the compiler in both decorator modes
// (test/unit/decorator-types.test.ts): each `@ts-expect-error` line must be an error.
import { register, subscribe, watch } from "labc";

export class Accepted {
  @register add(a: number, b: number) {
    return a + b;
  }
  @register() async slow() {
    return 1;
  }
  @register({ name: "renamed", scope: "host" }) named() {}
  @subscribe onOwnName(_value: unknown) {}
  @subscribe("lab.temp.*", { group: "workers" }) onTemp(_value: number) {}
  @watch("lab.level") @register level() {
    return 3;
  }
}

export class Refused {
  // @ts-expect-error: a static method is not served with an instance
  @register static reset() {}
  // @ts-expect-error: nor with parentheses
  @register() static resetAll() {}
  // @ts-expect-error: a field is not a method
  @register() count = 0;
  // @ts-expect-error: nor is a field holding a function
  @register onTick = () => 1;
  // @ts-expect-error: an accessor is not a method
  @register get value() {
    return 1;
  }
  // @ts-expect-error: a static subscriber would never receive anything
  @subscribe("lab.x") static onX() {}
  // @ts-expect-error: @watch needs a topic
  @watch level() {}
}

// The function forms stay as they were.
export const registered: Promise<void> = register(function ping() {}, { scope: "host" });
export const subscribed: Promise<() => Promise<void>> = subscribe((_value: unknown) => {}, "lab.y", { group: "g" });
