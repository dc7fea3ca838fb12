/**
 * Raw NATS request/reply for bench/backplane.ts: answers each request on `bench.echo` with its own
 * bytes, as a bare NATS service does. Argv: the NATS server's address. Prints "ready".
 */
import { connect } from "@nats-io/transport-node";

const connection = await connect({ servers: process.argv[2]! });
connection.subscribe("bench.echo", { callback: (_error, msg) => void msg.respond(msg.data) });
await connection.flush();
process.stdout.write("ready\n");
