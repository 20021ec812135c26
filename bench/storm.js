// The reconnect storm's clients (bench/storm.py): socket.io-client 4.8, which speaks connection
// state recovery by itself.
//
//   node bench/storm.js '<json config>'
//
// `rooms` private rooms of two: member 0 on the process that will be stopped (A), member 1 on
// the one that stays (B). B's members send `message` to their rooms at `rate` a second in all;
// A's receive. When told (a line "stop" on stdin, once bench/storm.py has SIGTERMed A), every
// socket of A reconnects to B at once, presenting its pid and offset. A bystander on B sends an
// acknowledged `message` every 50 ms throughout. Prints one JSON object per line: "ready",
// "storm" (reconnects done), then "done" with what every receiver got.
"use strict";

const fs = require("fs");
const readline = require("readline");
const { performance } = require("perf_hooks");
const { io } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const ACK_TIMEOUT_MS = 15000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const ack = (socket, event, data) => socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, data);

function rssKb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

function cpuTicks(pid) {  // user + system time, in clock ticks (1/100 s)
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function connect(url, userID, reconnect) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ["websocket"], query: { userID }, forceNew: true, timeout: ACK_TIMEOUT_MS,
      reconnection: reconnect, reconnectionDelay: 50, reconnectionDelayMax: 50, randomizationFactor: 0,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => { if (!reconnect) { socket.close(); reject(err); } });
  });
}

async function pooled(n, limit, task) {
  let next = 0;
  async function worker() {
    while (next < n) await task(next++);
  }
  await Promise.all(Array.from({ length: limit }, worker));
}

function payload(room, from, to, text) {
  return { data: {
    message: text, from, roomID: room.id, fromUsername: "user" + from, roomKey: "room:" + room.id,
    lastMessage: text, createRoomNotification: null, contact: false,
    unreadMessArray: [{ recipientID: to, roomID: room.id, countNumber: 1, updateStatus: true }],
  } };
}

async function member(url, userID, roomID, reconnect) {
  const socket = await connect(url, userID, reconnect);
  await ack(socket, "addOnlineUser", { userID, userUsername: "user" + userID });
  await ack(socket, "joinRoom", userID);
  await ack(socket, "chatRoom.join", roomID);
  return socket;
}

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

let firstDrop = null; // when the first socket of A saw its connection end

async function main() {
  const rooms = [];
  for (let i = 0; i < cfg.rooms; i++) {
    const a = String(cfg.base + 2 * i), b = String(cfg.base + 2 * i + 1);
    rooms.push({ id: `${a}:${b}`, away: a, stay: b, sent: [], got: [], recovered: null,
                 reconnected: false });
  }
  // the receivers, on A: each records the texts of its room's messageRoom, in order
  await pooled(rooms.length, 20, async (i) => {
    const room = rooms[i];
    room.receiver = await member(cfg.url_a, room.away, room.id, true);
    room.receiver.on("messageRoom", (p) => room.got.push(p.message));
    room.receiver.on("disconnect", (reason) => {
      if (firstDrop === null) firstDrop = performance.now();
      room.receiver.io.uri = cfg.url_b; // the deploy: its next connection goes to B
      if (reason === "io server disconnect") room.receiver.connect();
    });
    room.receiver.on("connect", () => {
      if (room.receiver.io.uri === cfg.url_b && !room.reconnected) {
        room.reconnected = true;
        room.recovered = room.receiver.recovered;
      }
    });
  });
  await pooled(rooms.length, 20, async (i) => {
    rooms[i].sender = await member(cfg.url_b, rooms[i].stay, rooms[i].id, false);
  });
  const bystanderId = String(cfg.base + 2 * cfg.rooms);
  const peerId = String(cfg.base + 2 * cfg.rooms + 1);
  const bystanderRoom = { id: `${bystanderId}:${peerId}` };
  const bystander = await member(cfg.url_b, bystanderId, bystanderRoom.id, false);
  // what everyone heard of the moving users' presence from the stop on: nothing, ideally
  const announced = { Add: 0, Remove: 0 };
  const moving = new Set(rooms.map((r) => r.away));
  let listening = false;
  bystander.on("newOnlineUser", (p) => {
    if (listening && p && moving.has(String(p.userID))) announced[p.type] = (announced[p.type] || 0) + 1;
  });
  out({ type: "ready" });

  let sending = true, stormAt = null, stormDone = null;
  const acks = []; // [time since start, ms]
  const started = performance.now();
  const bystanderLoop = (async () => {
    let n = 0;
    while (sending) {
      const t0 = performance.now();
      try {
        await ack(bystander, "message", payload(bystanderRoom, bystanderId, peerId, `b${n++}`));
        acks.push([t0, performance.now() - t0]);
      } catch (err) {
        acks.push([t0, ACK_TIMEOUT_MS]);
      }
      await sleep(50);
    }
  })();
  const sendLoop = (async () => {
    const interval = 1000 / cfg.rate;
    let next = performance.now(), k = 0;
    while (sending) {
      const room = rooms[k++ % rooms.length];
      const text = `m${room.sent.length}`;
      room.sent.push(text);
      room.sender.timeout(ACK_TIMEOUT_MS).emit("message", payload(room, room.stay, room.away, text),
        (err, answer) => { if (err || !answer || answer.ok !== true) room.failed = (room.failed || 0) + 1; });
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
    }
  })();
  let peakRss = 0;
  const rssLoop = setInterval(() => {
    try { peakRss = Math.max(peakRss, rssKb(cfg.pid_b)); } catch (err) { /* gone */ }
  }, 100);
  // each process's share of a core, per half second: [seconds since start, B %, A %]
  const cpu = [];
  let lastCpu = null;
  const cpuLoop = setInterval(() => {
    const now = [performance.now(), cpuTicks(cfg.pid_b), (() => { try { return cpuTicks(cfg.pid_a); } catch (err) { return null; } })()];
    if (lastCpu !== null) {
      const span = (now[0] - lastCpu[0]) / 1000;
      cpu.push([now[0], (now[1] - lastCpu[1]) / span, now[2] === null || lastCpu[2] === null ? null : (now[2] - lastCpu[2]) / span]);
    }
    lastCpu = now;
  }, 500);

  const lines = readline.createInterface({ input: process.stdin });
  let baseRss = rssKb(cfg.pid_b);
  const baseLoop = setInterval(() => {  // the last reading before the storm
    if (firstDrop === null) { baseRss = rssKb(cfg.pid_b); peakRss = baseRss; }
  }, 100);
  listening = true;
  await new Promise((resolve) => lines.once("line", resolve)); // A was stopped
  stormAt = firstDrop === null ? performance.now() : firstDrop;
  const deadline = stormAt + cfg.storm_timeout * 1000;
  while (rooms.some((r) => !r.reconnected) && performance.now() < deadline) await sleep(50);
  stormDone = performance.now();
  out({ type: "storm", seconds: (stormDone - stormAt) / 1000,
        reconnected: rooms.filter((r) => r.reconnected).length });
  await sleep(cfg.after * 1000);
  sending = false;
  await Promise.all([sendLoop, bystanderLoop]);
  await sleep(3000); // what is in flight arrives
  clearInterval(rssLoop);
  clearInterval(cpuLoop);
  clearInterval(baseLoop);

  const during = acks.filter(([t]) => t >= stormAt && t <= stormDone + 5000).map(([, ms]) => ms);
  const before = acks.filter(([t]) => t < stormAt).map(([, ms]) => ms);
  const broken = [];
  let whole = 0, recovered = 0, fresh = 0, gaps = 0, dupes = 0, disorder = 0, failedSends = 0;
  for (const room of rooms) {
    if (room.recovered) recovered++; else fresh++;
    failedSends += room.failed || 0;
    const seen = new Set();
    let last = -1, ok = true;
    for (const text of room.got) {
      const n = Number(text.slice(1));
      if (seen.has(n)) { dupes++; ok = false; continue; }
      seen.add(n);
      if (n < last) { disorder++; ok = false; }
      last = n;
    }
    const missing = room.sent.length - seen.size;
    if (missing) { gaps += missing; ok = false; }
    if (ok) whole++; else if (broken.length < 5) broken.push({ room: room.id, recovered: room.recovered, sent: room.sent.length, got: room.got.join(" ") });
  }
  out({ type: "done", rooms: rooms.length, recovered, fresh, whole, missing: gaps, duplicates: dupes,
        out_of_order: disorder, failed_sends: failedSends, announced,
        sent: rooms.reduce((s, r) => s + r.sent.length, 0),
        storm_seconds: (stormDone - stormAt) / 1000,
        base_rss_mb: baseRss / 1024, peak_rss_mb: peakRss / 1024,
        rss_growth_mb: (peakRss - baseRss) / 1024,
        ack_p50_before_ms: percentile(before, 50), ack_p99_before_ms: percentile(before, 99),
        ack_p50_storm_ms: percentile(during, 50), ack_p99_storm_ms: percentile(during, 99),
        ack_max_storm_ms: during.length ? Math.max(...during) : null, acks_storm: during.length,
        // the slowest acknowledgements of the storm: [seconds after the first drop, ms]
        slowest_acks: acks.filter(([t]) => t >= stormAt && t <= stormDone + 5000)
          .sort((a, b) => b[1] - a[1]).slice(0, 8)
          .map(([t, ms]) => [Math.round((t - stormAt) / 10) / 100, Math.round(ms)]),
        // B's and A's share of a core (%), per half second from 2 s before the first drop
        cpu_storm: cpu.filter(([t]) => t >= stormAt - 2000 && t <= stormDone + 5000)
          .map(([t, b, a]) => [Math.round((t - stormAt) / 100) / 10, Math.round(b), a === null ? null : Math.round(a)]),
        seconds: (performance.now() - started) / 1000, broken });
  for (const room of rooms) { room.receiver.close(); room.sender.close(); }
  bystander.close();
  process.exit(0);
}

main().catch((err) => { out({ type: "error", message: String(err && err.stack || err) }); process.exit(1); });
