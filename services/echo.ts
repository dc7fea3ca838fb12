import { register, subscribe } from "labc";

/** The demo service: answers with what it is given, adds numbers, prints what is published. */
export class Echo {
  @register()
  echo(message: unknown) {
    return message;
  }

  @register({ name: "add" })
  sum(a: number, b: number) {
    return a + b;
  }

  @subscribe("lab.print")
  print(message: unknown) {
    console.log(message);
  }
}
