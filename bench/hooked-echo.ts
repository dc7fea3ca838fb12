import * as labc from "labc";
import { register } from "labc";

// The echo of W12: a server with a hook that does nothing, for what hooks cost the serving side.
labc.addHook({ before() {}, after() {}, failed() {} });

export class HookedEcho {
  @register({ name: "echo" })
  echo(message: unknown) {
    return message;
  }
}
