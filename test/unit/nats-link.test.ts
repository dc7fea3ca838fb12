import net from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { linkToNats, type NatsLink } from "../../lib/backplane/nats-link.js";
import type { BackplaneSettings } from "../../lib/config.js";

/**
 * A NATS server played at the byte level on 127.0.0.1: what the link writes is read line by
 * line, and the test writes the server's side itself (split anywhere, wrong, too long).
 */
class FakeNats {
  socket: net.Socket | undefined;
  received = "";
  private readonly server: net.Server;

  /** `deny`: subjects whose subscription it refuses, as a NATS server does for a login without the permission. */
  constructor(info: object, deny: string[] = []) {
    this.server = net.createServer((socket) => {
      this.socket = socket;
      socket.on("data", (chunk) => {
        this.received += chunk.toString("latin1");
        for (const subject of deny) {
          if (chunk.includes(`SUB ${subject} `)) socket.write(`-ERR 'Permissions Violation for Subscription to "${subject}"'\r\n`);
        }
        // Every PING is answered, as a NATS server does.
        for (; this.received.includes("PING\r\n"); this.received = this.received.replace("PING\r\n", "")) socket.write("PONG\r\n");
      });
      socket.on("error", () => {});
      socket.write(`INFO ${JSON.stringify(info)}\r\n`);
    });
  }

  listen(): Promise<number> {
    return new Promise((done) => this.server.listen(0, "127.0.0.1", () => done((this.server.address() as net.AddressInfo).port)));
  }

  /** Waits until the link wrote something matching `pattern`, and returns the match. */
  async saw(pattern: RegExp): Promise<RegExpMatchArray> {
    for (let i = 0; i < 200; i++) {
      const match = this.received.match(pattern);
      if (match) return match;
      await new Promise((done) => setTimeout(done, 10));
    }
    throw new Error(`never saw ${pattern} in ${JSON.stringify(this.received)}`);
  }

  close(): void {
    this.socket?.destroy();
    this.server.close();
  }
}

const fakes: FakeNats[] = [];
const links: NatsLink[] = [];
afterEach(async () => {
  for (const link of links.splice(0)) await link.close(100);
  for (const fake of fakes.splice(0)) fake.close();
});

async function linked(info: object = {}, deny: string[] = []): Promise<{ fake: FakeNats; link: NatsLink }> {
  const fake = new FakeNats(info, deny);
  fakes.push(fake);
  const port = await fake.listen();
  const settings: BackplaneSettings = { servers: [`nats://127.0.0.1:${port}`], realm: "main", heartbeatMs: 1000, relinkMs: 10_000, user: "lab", pass: "pw" };
  const link = await linkToNats(settings, "test", 2000);
  links.push(link);
  return { fake, link };
}

describe("NatsLink, a process's own NATS client", () => {
  test("logs in with CONNECT, asks for no-responders, and answers the server's PING", async () => {
    const { fake } = await linked();
    const [, connect] = await fake.saw(/CONNECT (\{.*\})\r\n/);
    expect(JSON.parse(connect!)).toMatchObject({ verbose: false, headers: true, no_responders: true, user: "lab", pass: "pw", name: "test" });
    fake.received = "";
    fake.socket!.write("PI");
    fake.socket!.write("NG\r\n");
    await fake.saw(/PONG\r\n/);
  });

  test("a pipe's writes of one tick leave as one message, cut at max_payload; answers cut anywhere arrive whole", async () => {
    const { fake, link } = await linked({ max_payload: 16 });
    const pipe = await link.open("labc.main.srv.x");
    const [, inbox] = await fake.saw(/SUB (\S+)\.\* 1\r\n/);
    const chunks: Buffer[] = [];
    pipe.start((chunk) => chunks.push(chunk), () => {});
    pipe.write(Buffer.alloc(30, 1));
    pipe.write([Buffer.alloc(5, 2), Buffer.alloc(5, 3)]);
    const reply = `${inbox}.1`;
    await fake.saw(new RegExp(`PUB labc\\.main\\.srv\\.x ${reply.replace(/\./g, "\\.")} 8\\r\\n`));
    const pubs = [...fake.received.matchAll(/PUB \S+ \S+ (\d+)\r\n/g)].map((match) => Number(match[1]));
    expect(pubs).toEqual([16, 16, 8]);
    // One message, split across writes mid-line and mid-payload.
    const message = `MSG ${reply} 1 5\r\nhello\r\n`;
    for (const piece of [message.slice(0, 7), message.slice(7, 20), message.slice(20)]) {
      fake.socket!.write(piece);
      await new Promise((done) => setTimeout(done, 5));
    }
    await expect.poll(() => Buffer.concat(chunks).toString()).toBe("hello");
  });

  test("NATS's no-responders status ends the pipe with why; an unknown operation ends the link", async () => {
    const { fake, link } = await linked();
    const pipe = await link.open("labc.main.srv.gone");
    const [, inbox] = await fake.saw(/SUB (\S+)\.\* 1\r\n/);
    let ended: Error | undefined;
    pipe.start(() => {}, (error) => (ended = error));
    const status = "NATS/1.0 503\r\n\r\n";
    fake.socket!.write(`HMSG ${inbox}.1 1 ${status.length} ${status.length}\r\n${status}\r\n`);
    await expect.poll(() => ended?.message).toBe("nobody answers on NATS subject labc.main.srv.gone");
    fake.socket!.write("BOGUS stuff\r\n");
    await expect.poll(() => link.closed).toBe(true);
  });

  test("a line longer than any control line ends the link instead of growing without bound", async () => {
    const { fake, link } = await linked();
    fake.socket!.write(Buffer.alloc(70 * 1024, "x"));
    await expect.poll(() => link.closed).toBe(true);
  });

  test("a subscription NATS refuses (permissions) rejects serve, and the link goes on", async () => {
    const { fake, link } = await linked({}, ["labc.main.srv.denied"]);
    await expect(link.serve("labc.main.srv.denied", () => {})).rejects.toThrow(/Permissions Violation for Subscription to "labc.main.srv.denied"/);
    expect(link.closed).toBe(false);
    await fake.saw(/UNSUB 1\r\n/);
  });
});
