// Drives the REAL @socket.io/redis-emitter for chatgate's cluster tests
// (tests/cluster.rs): connects to the Redis given as the first argument and
// runs the JSON list of operations given as the second, then exits.
//
// Operation shapes:
//   {"op":"emit","to":["room"],"except":["room"],"event":"name","args":[...]}
//   {"op":"socketsJoin","in":["room"],"rooms":["room"]}
//   {"op":"socketsLeave","in":["room"],"rooms":["room"]}
//   {"op":"disconnectSockets","in":["room"],"close":true}
// An argument {"$binary": base64} is sent as a Buffer.
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";

const [url, opsJson] = process.argv.slice(2);
const ops = JSON.parse(opsJson);

const revive = (value) => {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    if (Object.keys(value).length === 1 && typeof value.$binary === "string") {
      return Buffer.from(value.$binary, "base64");
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  }
  return value;
};

const client = createClient({ url });
client.on("error", (err) => console.error("redis error", err.message));
await client.connect();
const emitter = new Emitter(client);

for (const op of ops) {
  let target = emitter;
  for (const room of op.to ?? op.in ?? []) target = target.to(room);
  for (const room of op.except ?? []) target = target.except(room);
  switch (op.op) {
    case "emit":
      target.emit(op.event, ...revive(op.args ?? []));
      break;
    case "socketsJoin":
      target.socketsJoin(op.rooms);
      break;
    case "socketsLeave":
      target.socketsLeave(op.rooms);
      break;
    case "disconnectSockets":
      target.disconnectSockets(op.close ?? false);
      break;
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}
// The emitter publishes without waiting; PING after them flushes the queue.
await client.ping();
await client.quit();
console.log("done");
