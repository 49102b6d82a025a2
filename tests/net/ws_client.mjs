// ws_client.mjs - a Theater client that is not ours: Node's `ws` package
// and a few lines of CBOR, written from docs/protocol.md. It subscribes
// to a chain over WebSocket, is cut off, reconnects with its session id
// and the next sequence number it wants, and checks that it then gets
// exactly the events it missed: no gap, no duplicate.
//
//   node tests/net/ws_client.mjs ws://127.0.0.1:PORT/ WS_MODULE_DIR
// Exit 0 on success; otherwise a message and exit 1.
import { createRequire } from 'node:module';

const [url, modDir] = process.argv.slice(2);
const require = createRequire(modDir + '/');
const WebSocket = require('ws');

function fail(msg) {
  console.error('ws_client: FAIL: ' + msg);
  process.exit(1);
}

// ---- CBOR (the subset the protocol uses) ----
function head(major, n) {
  if (n < 24) return [major << 5 | n];
  if (n < 256) return [major << 5 | 24, n];
  if (n < 65536) return [major << 5 | 25, n >> 8, n & 255];
  if (n < 2 ** 32) return [major << 5 | 26, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255];
  const hi = Math.floor(n / 2 ** 32), lo = n >>> 0;
  return [major << 5 | 27, hi >>> 24, (hi >> 16) & 255, (hi >> 8) & 255, hi & 255,
          lo >>> 24, (lo >> 16) & 255, (lo >> 8) & 255, lo & 255];
}
function enc(v) {
  if (typeof v === 'number') return head(0, v);
  if (typeof v === 'boolean') return [v ? 0xf5 : 0xf4];
  if (typeof v === 'string') { const b = Buffer.from(v, 'utf8'); return [...head(3, b.length), ...b]; }
  if (Buffer.isBuffer(v)) return [...head(2, v.length), ...v];
  if (Array.isArray(v)) return [...head(4, v.length), ...v.flatMap(enc)];
  const keys = Object.keys(v);
  return [...head(5, keys.length), ...keys.flatMap(k => [...enc(k), ...enc(v[k])])];
}
function dec(b, pos = 0) {
  const ib = b[pos++], major = ib >> 5, ai = ib & 31;
  let n = ai;
  if (ai === 24) n = b[pos++];
  else if (ai === 25) { n = b.readUInt16BE(pos); pos += 2; }
  else if (ai === 26) { n = b.readUInt32BE(pos); pos += 4; }
  else if (ai === 27) { n = Number(b.readBigUInt64BE(pos)); pos += 8; }
  switch (major) {
    case 0: return [n, pos];
    case 1: return [-1 - n, pos];
    case 2: return [b.subarray(pos, pos + n), pos + n];
    case 3: return [b.toString('utf8', pos, pos + n), pos + n];
    case 4: { const a = []; for (let i = 0; i < n; i++) { let x; [x, pos] = dec(b, pos); a.push(x); } return [a, pos]; }
    case 5: { const o = {}; for (let i = 0; i < n; i++) { let k, x; [k, pos] = dec(b, pos); [x, pos] = dec(b, pos); o[k] = x; } return [o, pos]; }
    case 7: return [ai === 21 ? true : ai === 20 ? false : null, pos];
  }
  fail('unexpected CBOR major type ' + major);
}

// ---- frames: type u8, flags u8, stream u32, length u32, payload ----
const T = { HELLO: 1, WELCOME: 2, REQUEST: 3, RESPONSE: 4, DATA: 5, EVENT: 6, CREDIT: 7,
            GAP: 8, CANCEL: 9, ERROR: 10, PING: 11, PONG: 12, GOAWAY: 13 };
const END = 1;
function frame(type, flags, stream, obj) {
  const p = Buffer.from(enc(obj));
  const h = Buffer.alloc(10);
  h[0] = type; h[1] = flags; h.writeUInt32BE(stream, 2); h.writeUInt32BE(p.length, 6);
  return Buffer.concat([h, p]);
}
function* frames(msg) {
  let off = 0;
  while (off < msg.length) {
    if (msg.length - off < 10) fail('message ends inside a frame header');
    const type = msg[off], flags = msg[off + 1], stream = msg.readUInt32BE(off + 2);
    const len = msg.readUInt32BE(off + 6);
    if (flags & 2) fail('compressed frame although zstd was not offered');
    const payload = msg.subarray(off + 10, off + 10 + len);
    off += 10 + len;
    const body = type === T.DATA || type === T.PING || type === T.PONG ? payload : dec(payload)[0];
    yield { type, flags, stream, body };
  }
}

// A connection: a queue of frames and helpers to wait for one.
function open(hello) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'theater.v1');
    const queue = [], waiters = [];
    ws.on('message', (data, isBinary) => {
      if (!isBinary) fail('text message from the server');
      for (const f of frames(Buffer.from(data))) {
        if (f.type === T.PING) { ws.send(Buffer.concat([Buffer.from([T.PONG, 0, 0, 0, 0, 0, 0, 0, 0, 8]), f.body])); continue; }
        const w = waiters.findIndex(w => w.match(f));
        if (w >= 0) waiters.splice(w, 1)[0].resolve(f); else queue.push(f);
      }
    });
    ws.on('error', reject);
    ws.on('open', () => {
      if (ws.protocol !== 'theater.v1') fail('server chose subprotocol ' + ws.protocol);
      ws.send(frame(T.HELLO, 0, 0, hello));
      c.next(f => f.type === T.WELCOME || f.type === T.ERROR || f.type === T.GOAWAY, 10000)
        .then(f => {
          if (f.type !== T.WELCOME) fail('handshake refused: ' + JSON.stringify(f.body));
          c.welcome = f.body;
          resolve(c);
        });
    });
    const c = {
      ws,
      stream: hello.last || 0,
      next(match, ms = 20000) {
        const i = queue.findIndex(match);
        if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
        return new Promise((res) => {
          const t = setTimeout(() => fail('timed out waiting for a frame'), ms);
          waiters.push({ match, resolve: f => { clearTimeout(t); res(f); } });
        });
      },
      async call(op, args) {
        const id = ++c.stream;
        ws.send(frame(T.REQUEST, END, id, { op, ...args }));
        const f = await c.next(f => f.stream === id);
        if (f.type === T.ERROR) fail(op + ': ' + JSON.stringify(f.body));
        return [id, f.body];
      },
    };
  });
}

const hello = { versions: [1], features: ['resume'], client: 'node-ws-test' };

// A version we do not speak is refused with a clear error.
{
  const ws = new WebSocket(url, 'theater.v1');
  await new Promise(r => ws.on('open', r));
  ws.send(frame(T.HELLO, 0, 0, { versions: [99], features: [] }));
  const f = await new Promise(r => ws.on('message', d => r([...frames(Buffer.from(d))][0])));
  if (f.type !== T.ERROR || f.body.code !== 'unsupported_version')
    fail('version 99: expected ERROR unsupported_version, got ' + JSON.stringify(f.body));
  ws.terminate();
}

const chain = 'ws-test-' + process.pid;
const a = await open(hello);
const session = a.welcome.session;
if (!/^[0-9a-f]{32}$/.test(session)) fail('bad session id ' + session);
await a.call('chain.append', { chain, type: 'tick', count: 20 });

// Subscribe from 0 with a credit of 100; take events 0..9, then be cut off.
const [sub, resp] = await a.call('subscribe', { chain, from: 0, credit: 100 });
if (resp.next !== 0) fail('subscribe answered next=' + resp.next);
let next = 0;
while (next < 10) {
  const f = await a.next(f => f.stream === sub && (f.type === T.EVENT || f.type === T.GAP));
  if (f.type === T.GAP) fail('unexpected gap ' + JSON.stringify(f.body));
  if (f.body.seq !== next) fail(`expected seq ${next}, got ${f.body.seq}`);
  next++;
}
const last = a.stream;
a.ws.terminate(); // cut off: no goodbye

// Meanwhile the chain grows (another client).
const b = await open(hello);
await b.call('chain.append', { chain, type: 'tock', count: 30 });
b.ws.close();

// Reconnect with the session id and the next seq we want.
const c = await open({ ...hello, session, resume: [[sub, next]], last });
if (c.welcome.resumed !== true) fail('session not resumed: ' + JSON.stringify(c.welcome));
if (c.welcome.session !== session) fail('resumed under another session id');
c.ws.send(frame(T.CREDIT, 0, sub, { n: 1000 }));
while (next < 50) {
  const f = await c.next(f => f.stream === sub && (f.type === T.EVENT || f.type === T.GAP));
  if (f.type === T.GAP) fail('gap after resumption ' + JSON.stringify(f.body));
  if (f.body.seq !== next) fail(`after resumption: expected seq ${next}, got ${f.body.seq}`);
  const want = next < 20 ? 'tick' : 'tock';
  if (f.body.type !== want) fail(`seq ${next}: type ${f.body.type}, want ${want}`);
  next++;
}
// Nothing more (no duplicate) until a new event, which arrives live.
await c.call('chain.append', { chain, type: 'live', count: 1 });
const f = await c.next(f => f.stream === sub && f.type === T.EVENT);
if (f.body.seq !== 50 || f.body.type !== 'live') fail('live event after resumption: ' + JSON.stringify(f.body));

// An unknown session is not resumed (the client must subscribe again).
const d = await open({ ...hello, session: 'f'.repeat(32), resume: [[1, 0]], last: 1 });
if (d.welcome.resumed !== false) fail('an unknown session was resumed');
d.ws.close();
c.ws.close();
console.log('ws_client: ok (50 events, cut off at 10, resumed without gap or duplicate)');
process.exit(0);
