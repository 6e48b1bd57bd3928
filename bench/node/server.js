'use strict';
// Minimal Node/Socket.IO reference server for chatgate-bench.
//
// Implements the same events as chatgate (see the wire contract), minimally but
// faithfully: dev-mode handshake with `auth.userId`, `channel:join` with an ack,
// `message:send` broadcast to the room (except the sender) plus an optional ack.
// No persistence, no presence, no rate limits: this is the cost floor of a plain
// Socket.IO gateway, the baseline chatgate is compared against.
//
// Environment: PORT (default 3000), HOST (default 127.0.0.1), REDIS_URL (unset:
// one process; set, e.g. redis://127.0.0.1:6379: rooms span every process on
// that Redis through `@socket.io/redis-adapter`, like chatgate's cluster mode).

const http = require('http');
const { Server } = require('socket.io');

const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || '127.0.0.1';
const CHANNEL_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_TEXT = 4000;

const httpServer = http.createServer((req, res) => {
  if (req.url === '/healthz' || req.url === '/readyz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, {
  perMessageDeflate: false,
  transports: ['polling', 'websocket'],
  cors: { origin: true, credentials: true },
});

function fail(socket, ack, code, message) {
  const err = { status: 'error', code, message };
  if (typeof ack === 'function') ack(err);
  else socket.emit('error', err);
}

let nextId = 0;

io.use((socket, next) => {
  const userId = socket.handshake.auth && socket.handshake.auth.userId;
  if (typeof userId !== 'string' || userId.length === 0) {
    next(new Error('UNAUTHORIZED'));
    return;
  }
  socket.data.userId = userId;
  next();
});

io.on('connection', (socket) => {
  socket.on('channel:join', (payload, ack) => {
    const channelId = typeof payload === 'string' ? payload : payload && payload.channelId;
    if (typeof channelId !== 'string' || !CHANNEL_RE.test(channelId)) {
      fail(socket, ack, 'INVALID_PAYLOAD', 'invalid channel id');
      return;
    }
    socket.join(channelId);
    if (typeof ack === 'function') ack({ status: 'ok', channelId, members: [], online: [] });
  });

  socket.on('message:send', (payload, ack) => {
    const channelId = payload && payload.channelId;
    const text = payload && payload.text;
    if (typeof channelId !== 'string' || !CHANNEL_RE.test(channelId) ||
        typeof text !== 'string' || text.length === 0) {
      fail(socket, ack, 'INVALID_PAYLOAD', 'invalid message');
      return;
    }
    if (text.length > MAX_TEXT) {
      fail(socket, ack, 'PAYLOAD_TOO_LARGE', 'message text too long');
      return;
    }
    if (!socket.rooms.has(channelId)) {
      fail(socket, ack, 'NOT_IN_CHANNEL', 'join the channel first');
      return;
    }
    const id = String(++nextId);
    const ts = Date.now();
    const message = { id, channelId, userId: socket.data.userId, text, ts };
    if (typeof payload.clientMsgId === 'string') message.clientMsgId = payload.clientMsgId;
    socket.to(channelId).emit('message:new', message);
    if (typeof ack === 'function') ack({ status: 'ok', id, channelId, ts });
  });
});

async function useRedisAdapter(url) {
  const { createClient } = require('redis');
  const { createAdapter } = require('@socket.io/redis-adapter');
  const pubClient = createClient({ url });
  const subClient = pubClient.duplicate();
  for (const client of [pubClient, subClient]) {
    client.on('error', (err) => console.error(`redis: ${err.message}`));
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);
  io.adapter(createAdapter(pubClient, subClient));
}

async function main() {
  const redisUrl = process.env.REDIS_URL;
  if (redisUrl) await useRedisAdapter(redisUrl);
  httpServer.listen(PORT, HOST, () => {
    const mode = redisUrl ? ` with @socket.io/redis-adapter on ${redisUrl}` : '';
    console.log(`node reference server listening on ${HOST}:${PORT}${mode} (pid ${process.pid})`);
  });
}

main().catch((err) => {
  console.error(`startup failed: ${err.stack || err}`);
  process.exit(1);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
