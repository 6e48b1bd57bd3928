// chatgate test bridge: drives the REAL npm socket.io-client on behalf of the
// Rust integration tests (tests/support/mod.rs).
//
// Protocol: line-delimited JSON over stdin/stdout.
//
//   stdin  (commands):   {"id": 1, "cmd": "connect", ...fields}
//   stdout (answers):    {"id": 1, "ok": true, "result": ...}
//                        {"id": 1, "ok": false, "error": "human text"}
//   stdout (pushed):     {"client": "c1", "type": "event", "event": "x", "args": [...], "ack": bool}
//                        {"client": "c1", "type": "connect", "id": "<sid>"}      (also on reconnect)
//                        {"client": "c1", "type": "disconnect", "reason": "..."}
//                        {"client": "c1", "type": "connect_error", "message": "...", "data": ...}
//                        {"client": "c1", "type": "upgrade", "transport": "websocket"}
//                        {"client": "c1", "type": "ping"}   (the server pinged; answered unless silenced)
//   stdout (once, first): {"type": "ready", "versions": {"v4": "4.8.x", "v3": "3.1.x"}}
//
// Commands:
//   connect    {client, url, version: 4|3, options}      -> {id, transport} | {connectError: {message, data}}
//   emit       {client, event, args, ack, timeoutMs}      -> ack args (array) when ack, else null
//   ackReply   {client, event, args}                      -> null; args this client acks `event` with
//                                                            (default: the received args, echoed)
//   disconnect {client}                                   -> null (Socket.IO disconnect of the namespace)
//   close      {client}                                   -> null (closes the Engine.IO connection)
//   transport  {client}                                   -> current transport name
//   state      {client}                                   -> {connected, id, transport, recovered, pid}
//   silence    {client}                                   -> null; the current Engine.IO connection stops
//                                                            answering the server's pings
//   exit       {}                                         -> closes every client, then exits
//
// Binary values travel as {"$binary": "<base64>"} in both directions: they are
// turned into Buffers before emitting and every received Buffer/ArrayBuffer/
// typed array is turned back into that form.
//
// The bridge never exits on a bad command: errors are answered and logged to stderr.

import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { io as ioV4 } from "socket.io-client";
import { io as ioV3 } from "socket.io-client-v3";

const require = createRequire(import.meta.url);
const VERSIONS = {
  v4: require("socket.io-client/package.json").version,
  v3: require("socket.io-client-v3/package.json").version,
};

/** Default deadline for an emit waiting for its ack, in milliseconds. */
const DEFAULT_ACK_TIMEOUT_MS = 5000;

/** name -> { socket, version, ackReplies: Map<event, args> } */
const clients = new Map();

/** Writes one JSON line to stdout (synchronous for pipes on Linux, so ordering holds). */
function send(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function log(...parts) {
  process.stderr.write(`[bridge] ${parts.map(String).join(" ")}\n`);
}

/** Converts {"$binary": b64} markers (recursively) into Buffers before emitting. */
function toWire(value) {
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$binary" && typeof value.$binary === "string") {
      return Buffer.from(value.$binary, "base64");
    }
    const out = {};
    for (const key of keys) out[key] = toWire(value[key]);
    return out;
  }
  return value;
}

/** Converts every binary value (recursively) into a {"$binary": b64} marker for JSON output. */
function toJson(value) {
  if (Buffer.isBuffer(value)) return { $binary: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $binary: Buffer.from(value).toString("base64") };
  if (ArrayBuffer.isView(value)) {
    return { $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  }
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === "function") return null;
  if (value instanceof Error) return { message: value.message };
  if (value && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value)) {
      if (typeof value[key] !== "function") out[key] = toJson(value[key]);
    }
    return out;
  }
  return value === undefined ? null : value;
}

function clientOf(name) {
  const entry = clients.get(name);
  if (!entry) throw new Error(`unknown client ${JSON.stringify(name)}`);
  return entry;
}

function transportName(socket) {
  return socket.io?.engine?.transport?.name ?? null;
}

/** Reports upgrades of an Engine.IO connection (re-attached on every (re)open). */
function watchEngine(name, engine) {
  if (!engine || engine.__chatgateWatched) return;
  engine.__chatgateWatched = true;
  // Both engine.io-client 6.x and 4.x emit "pong" right after answering a server ping.
  engine.on("pong", () => send({ client: name, type: "ping" }));
  engine.on("upgrade", (transport) => {
    send({ client: name, type: "upgrade", transport: transport?.name ?? String(transport) });
  });
}

function connect(msg) {
  const name = msg.client;
  if (typeof name !== "string" || name === "") throw new Error("connect needs a client name");
  if (clients.has(name)) throw new Error(`client ${JSON.stringify(name)} already exists`);
  if (typeof msg.url !== "string") throw new Error("connect needs a url");
  const version = msg.version ?? 4;
  const factory = version === 3 ? ioV3 : version === 4 ? ioV4 : null;
  if (!factory) throw new Error(`unsupported client version ${version}`);

  const options = { forceNew: true, reconnection: false, ...(msg.options ?? {}) };
  if (options.auth !== undefined) options.auth = toWire(options.auth);
  const socket = factory(msg.url, options);
  const entry = { socket, version, ackReplies: new Map() };
  clients.set(name, entry);

  // Listeners that push notifications are registered before the one settling
  // the command, so the initial `connect` notification precedes the answer.
  socket.on("connect", () => {
    watchEngine(name, socket.io.engine);
    send({ client: name, type: "connect", id: socket.id ?? null });
  });
  socket.on("disconnect", (reason) => send({ client: name, type: "disconnect", reason: String(reason) }));
  socket.on("connect_error", (err) =>
    send({ client: name, type: "connect_error", message: err?.message ?? String(err), data: toJson(err?.data ?? null) }),
  );
  socket.io.on("open", () => watchEngine(name, socket.io.engine));
  socket.onAny((event, ...args) => {
    let ack = null;
    if (args.length > 0 && typeof args[args.length - 1] === "function") ack = args.pop();
    send({ client: name, type: "event", event, args: toJson(args), ack: ack !== null });
    if (ack) {
      const reply = entry.ackReplies.has(event) ? entry.ackReplies.get(event) : args;
      ack(...toWire(reply));
    }
  });

  return new Promise((resolve) => {
    const onConnect = () => {
      socket.off("connect_error", onError);
      resolve({ id: socket.id ?? null, transport: transportName(socket) });
    };
    const onError = (err) => {
      socket.off("connect", onConnect);
      // A refused connection is over for the test: stop any retry and forget the client.
      socket.disconnect();
      socket.io.engine?.close?.();
      clients.delete(name);
      resolve({ connectError: { message: err?.message ?? String(err), data: toJson(err?.data ?? null) } });
    };
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
  });
}

function emit(msg) {
  const { socket } = clientOf(msg.client);
  if (typeof msg.event !== "string") throw new Error("emit needs an event name");
  const args = toWire(Array.isArray(msg.args) ? msg.args : []);
  if (!msg.ack) {
    socket.emit(msg.event, ...args);
    return null;
  }
  const timeoutMs = msg.timeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ack for ${JSON.stringify(msg.event)} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.emit(msg.event, ...args, (...reply) => {
      clearTimeout(timer);
      resolve(toJson(reply));
    });
  });
}

function silence(msg) {
  const { socket } = clientOf(msg.client);
  const engine = socket.io?.engine;
  if (!engine) throw new Error("client has no engine connection");
  // engine.io-client 6.x (socket.io-client 4.x) names it _sendPacket,
  // 4.x (socket.io-client 3.x) sendPacket; both carry the "pong" reply.
  let patched = 0;
  for (const method of ["_sendPacket", "sendPacket"]) {
    if (typeof engine[method] === "function") {
      const original = engine[method].bind(engine);
      engine[method] = (type, ...rest) => (type === "pong" ? undefined : original(type, ...rest));
      patched += 1;
    }
  }
  if (patched === 0) throw new Error("cannot find the engine's packet sender to silence");
  return null;
}

function closeAll() {
  for (const { socket } of clients.values()) {
    try {
      socket.disconnect();
      socket.io.engine?.close?.();
    } catch (err) {
      log("error while closing:", err?.stack ?? err);
    }
  }
  clients.clear();
}

const handlers = {
  connect,
  emit,
  ackReply(msg) {
    clientOf(msg.client).ackReplies.set(msg.event, Array.isArray(msg.args) ? msg.args : []);
    return null;
  },
  disconnect(msg) {
    const { socket } = clientOf(msg.client);
    socket.disconnect();
    return null;
  },
  close(msg) {
    const { socket } = clientOf(msg.client);
    socket.io.engine?.close();
    return null;
  },
  transport(msg) {
    return transportName(clientOf(msg.client).socket);
  },
  state(msg) {
    const { socket } = clientOf(msg.client);
    return {
      connected: socket.connected,
      id: socket.id ?? null,
      transport: transportName(socket),
      // Connection state recovery (socket.io-client >= 4.6).
      recovered: socket.recovered === true,
      // The session's private id, as the client keeps it (a test may try
      // it as someone else).
      pid: socket._pid ?? null,
    };
  },
  silence,
  exit() {
    closeAll();
    setImmediate(() => process.exit(0));
    return null;
  },
};

async function handleLine(line) {
  if (line.trim() === "") return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (err) {
    log("unparsable command:", line);
    return;
  }
  const id = msg?.id ?? null;
  try {
    const handler = handlers[msg?.cmd];
    if (!handler) throw new Error(`unknown command ${JSON.stringify(msg?.cmd)}`);
    const result = await handler(msg);
    send({ id, ok: true, result: result ?? null });
  } catch (err) {
    log(`command ${JSON.stringify(msg?.cmd)} (id ${id}) failed:`, err?.message ?? err);
    send({ id, ok: false, error: err?.message ?? String(err) });
  }
}

process.on("uncaughtException", (err) => log("uncaught exception:", err?.stack ?? err));
process.on("unhandledRejection", (err) => log("unhandled rejection:", err?.stack ?? err));

const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on("line", (line) => {
  handleLine(line);
});
input.on("close", () => {
  closeAll();
  process.exit(0);
});

send({ type: "ready", versions: VERSIONS });
