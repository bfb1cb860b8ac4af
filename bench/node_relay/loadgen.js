// The benchmarks' load generator: socket.io-client (and fetch) driving After Hours or the bare
// relay alike, so both sides meet the same, cheap client. Usage: node loadgen.js SPEC_JSON
//
// It speaks to bench/ in JSON lines: it prints {"event": ...} lines on stdout and reads
// commands ("paced", "burst", "stop") on stdin, so several generators can start each phase
// together. Modes (spec.mode):
//   idle  connect spec.auths (one websocket each), print "connected", hold until "stop"
//   chat  (message ids carry spec.tag) connect every chat's two sides, print "ready"; "paced": each chat's first side sends
//         spec.paced messages, one per spec.pace seconds; "burst": each chat's second side sends
//         spec.burst back to back; each phase prints its latencies or its span
//   http  fire spec.requests at spec.rate per second (open loop), print latencies and statuses;
//         the first spec.warm of them (default 0) warm this process and the server up (their
//         connections, code, pools) and are left out of the latencies
const fs = require("fs");
const readline = require("readline");
const { io } = require("socket.io-client");

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const now = () => performance.now();
const wall = () => performance.timeOrigin + performance.now();
const say = (event, data = {}) => process.stdout.write(JSON.stringify({ event, ...data }) + "\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function connect(url, auth) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      auth,
      transports: ["websocket"],
      reconnection: false,
      forceNew: true, // one connection per socket, as one per phone
      timeout: 60000,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => {
      socket.close();
      reject(error);
    });
  });
}

// At most `width` connects in flight: a burst of thousands of handshakes is not the case measured.
async function connectAll(targets, width = 100) {
  const sockets = new Array(targets.length);
  let next = 0;
  let failed = 0;
  let firstError = null;
  async function lane() {
    while (next < targets.length) {
      const k = next++;
      try {
        sockets[k] = await connect(targets[k].url, targets[k].auth);
      } catch (error) {
        failed += 1;
        firstError = firstError || String(error && error.message);
      }
    }
  }
  await Promise.all(Array.from({ length: width }, lane));
  return { sockets, failed, firstError };
}

function commands(handlers) {
  readline.createInterface({ input: process.stdin }).on("line", async (line) => {
    const handler = handlers[line.trim()];
    if (handler) await handler();
  });
  process.stdin.on("end", () => process.exit(0));
}

async function idle() {
  const t0 = now();
  const { sockets, failed, firstError } = await connectAll(
    spec.auths.map((auth) => ({ url: spec.url, auth })),
    spec.width || 100
  );
  say("connected", {
    ok: sockets.filter(Boolean).length,
    failed,
    firstError,
    seconds: (now() - t0) / 1000,
  });
  let lost = 0;
  for (const s of sockets) if (s) s.on("disconnect", () => (lost += 1));
  commands({
    count: () => say("count", { open: sockets.filter((s) => s && s.connected).length, lost }),
    stop: () => {
      for (const s of sockets) if (s) s.close();
      say("stopped");
      process.exit(0);
    },
  });
}

async function chat() {
  const sentAt = new Map();
  const delivered = new Map(); // clientMessageId -> time it reached the other side
  const targets = [];
  for (const c of spec.chats) targets.push(c.a, c.b);
  const { sockets, failed, firstError } = await connectAll(targets);
  if (failed) {
    say("error", { message: `${failed} connects failed: ${firstError}` });
    process.exit(1);
  }
  sockets.forEach((socket, k) => {
    const me = targets[k].id;
    socket.on("after_hours:message", (message) => {
      const key = message.clientMessageId;
      if (message.senderId !== me && sentAt.has(key) && !delivered.has(key)) {
        delivered.set(key, now());
      }
    });
  });
  const failures = [];
  const acks = [];
  async function send(socket, matchId, key) {
    const t0 = now();
    sentAt.set(key, t0);
    let ack;
    try {
      ack = await socket
        .timeout(120000)
        .emitWithAck("after_hours:send_message", {
          matchId,
          content: `hello ${key}`,
          clientMessageId: key,
        });
    } catch (error) {
      ack = { ok: false, error: String(error) };
    }
    acks.push(now() - t0);
    if (!ack || !ack.ok) failures.push(ack);
  }
  async function arrived(keys, limitMs) {
    const until = now() + limitMs;
    while (keys.some((k) => !delivered.has(k))) {
      if (now() > until) return false;
      await sleep(5);
    }
    return true;
  }
  const paced = async () => {
    const keys = [];
    await Promise.all(
      spec.chats.map(async (c, n) => {
        const socket = sockets[2 * n];
        await sleep(Math.random() * spec.pace * 1000);
        for (let k = 0; k < spec.paced; k++) {
          const started = now();
          const key = `${c.match}:${spec.tag}:paced:${k}`;
          keys.push(key);
          await send(socket, c.match, key);
          await sleep(Math.max(0, spec.pace * 1000 - (now() - started)));
        }
      })
    );
    const complete = await arrived(keys, 60000);
    say("paced", {
      acks: acks.splice(0),
      deliveries: keys.filter((k) => delivered.has(k)).map((k) => delivered.get(k) - sentAt.get(k)),
      lost: keys.filter((k) => !delivered.has(k)).length,
      complete,
      failures: failures.splice(0, 3),
    });
  };
  const burst = async () => {
    const keys = [];
    const start = wall();
    const t0 = now();
    await Promise.all(
      spec.chats.map(async (c, n) => {
        const socket = sockets[2 * n + 1];
        for (let k = 0; k < spec.burst; k++) {
          const key = `${c.match}:${spec.tag}:burst:${k}`;
          keys.push(key);
          await send(socket, c.match, key);
        }
      })
    );
    const complete = await arrived(keys, 120000);
    const last = Math.max(...keys.filter((k) => delivered.has(k)).map((k) => delivered.get(k)));
    acks.splice(0);
    say("burst", {
      sent: keys.length,
      lost: keys.filter((k) => !delivered.has(k)).length,
      start,
      end: start + (last - t0),
      complete,
      failures: failures.splice(0, 3),
    });
  };
  say("ready");
  commands({
    paced,
    burst,
    stop: () => {
      for (const s of sockets) s.close();
      process.exit(0);
    },
  });
}

async function http() {
  const latencies = [];
  const statuses = {};
  const t0 = now();
  const interval = 1000 / spec.rate;
  await Promise.all(
    spec.requests.map(async (request, k) => {
      await sleep(Math.max(0, t0 + k * interval - now()));
      const started = now();
      let status;
      try {
        const response = await fetch(spec.base + request.path, {
          method: request.method,
          headers: { "content-type": "application/json", ...(request.headers || {}) },
          body: request.body === undefined ? undefined : JSON.stringify(request.body),
        });
        await response.arrayBuffer();
        status = response.status;
      } catch (error) {
        status = String(error && error.message);
      }
      if (k >= (spec.warm || 0)) latencies.push(now() - started);
      statuses[status] = (statuses[status] || 0) + 1;
    })
  );
  say("http", { latencies, statuses, seconds: (now() - t0) / 1000 });
  process.exit(0);
}

({ idle, chat, http })[spec.mode]().catch((error) => {
  say("error", { message: String((error && error.stack) || error) });
  process.exit(1);
});
