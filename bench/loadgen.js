// The load generator: socket.io-client 4.8 in one Node.js process, driven by bench/run.py.
//
//   node bench/loadgen.js '<json config>'
//
// It runs one scenario against one server and prints one JSON object per line: "ready" once
// its sockets are set up, one "step" per measured window, then "done". Every step reports the
// generator's own CPU use (share of one core, from process.cpuUsage) and the server's CPU and
// RSS read from /proc/<server pid>; a step in which the generator used more than
// `loadgen_cpu_limit` of its core is marked invalid, since then it measured itself.
//
// Latency is measured per delivery: the sender writes performance.now() into the text that
// the server relays (the message text, or the typist's username for typing events), and the
// receiving socket, in this same process, subtracts it from its own clock on arrival.
"use strict";

const fs = require("fs");
const { monitorEventLoopDelay, performance } = require("perf_hooks");
const { io } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const CLK_TCK = cfg.clk_tck || 100;
const CPU_LIMIT = cfg.loadgen_cpu_limit || 0.9;
const ACK_TIMEOUT_MS = 15000;
const IDLE_CONNECT_TIMEOUT_MS = 5000; // a server out of file descriptors never answers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// ---------------------------------------------------------------- /proc and our own CPU

function serverCpuSeconds(pid = cfg.server_pid) {
  if (!pid) return null;
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime, all threads
}

// With several server processes (bench/scale_out.py): each one's CPU, in the order given.
const serversCpuSeconds = () => (cfg.server_pids || []).map((pid) => serverCpuSeconds(pid));

function serverRssKb() {
  if (!cfg.server_pid) return null;
  const match = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${cfg.server_pid}/status`, "utf8"));
  return match ? Number(match[1]) : null;
}

// Busy seconds of every core together (/proc/stat): what neither the server nor this process
// used of it is other load on the machine (and kernel network time), reported as noise.
function machineBusySeconds() {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = ticks[3] + ticks[4]; // idle + iowait
  return (ticks.slice(0, 8).reduce((a, b) => a + b, 0) - idle) / CLK_TCK;
}

function openWindow() {
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  return {
    wall: performance.now(), cpu: process.cpuUsage(), server: serverCpuSeconds(),
    servers: serversCpuSeconds(), machine: machineBusySeconds(), lag,
  };
}

function closeWindow(win) {
  const seconds = (performance.now() - win.wall) / 1000;
  const cpu = process.cpuUsage(win.cpu);
  const loadgenCpu = (cpu.user + cpu.system) / 1e6 / seconds;
  const serverCpu = win.server === null ? null : (serverCpuSeconds() - win.server) / seconds;
  const machineCpu = (machineBusySeconds() - win.machine) / seconds;
  return {
    seconds: round(seconds, 3),
    loadgen_cpu: round(loadgenCpu, 3),
    server_cpu: serverCpu === null ? null : round(serverCpu, 3),
    servers_cpu: serversCpuSeconds().map((used, i) => round((used - win.servers[i]) / seconds, 3)),
    other_cpu: round(Math.max(0, machineCpu - loadgenCpu - (serverCpu || 0)), 3),
    server_rss_kb: serverRssKb(),
    // how late the generator's own event loop ran (its garbage collections among others): a
    // delivery that arrives while it is held up is timed late by as much
    loadgen_lag_ms: closeLag(win.lag),
    valid: loadgenCpu <= CPU_LIMIT,
  };
}

function closeLag(lag) {
  lag.disable();
  return { p99: round(lag.percentile(99) / 1e6, 1), max: round(lag.max / 1e6, 1) };
}

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function percentiles(samples) {
  if (samples.length === 0) return { count: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  let sum = 0;
  for (const x of sorted) sum += x;
  return {
    count: sorted.length,
    mean: round(sum / sorted.length, 3),
    p50: round(at(0.5), 3),
    p90: round(at(0.9), 3),
    p99: round(at(0.99), 3),
    p999: round(at(0.999), 3),
    max: round(sorted[sorted.length - 1], 3),
  };
}

// ---------------------------------------------------------------- sockets

function connect(userID, room, timeout = ACK_TIMEOUT_MS, url = cfg.url) {
  const query = { userID };
  if (room) query.room = room; // read by the echo ceiling only; the servers ignore it
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ["websocket"], query, forceNew: true, reconnection: false, timeout,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => { socket.close(); reject(err); });
  });
}

const ack = (socket, event, data) => socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, data);

// Run `task(i)` for i in [0, n) with at most `limit` in flight.
async function pooled(n, limit, task) {
  let next = 0;
  const results = new Array(n);
  async function worker() {
    while (next < n) {
      const i = next++;
      results[i] = await task(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return results;
}

// ---------------------------------------------------------------- relay, fan-out, typing

// What the server relays and where the sender's timestamp comes back in each delivery.
const CARRIERS = {
  message: {
    server: {
      messageRoom: (p) => p.message,
      messagePage: (p) => p.lastMessage,
      messageResponseNotify: (p) => p.lastMessage,
      firstMessageConversation: (p) => p.lastMessage,
    },
    echo: { message: (p) => p.data.message }, // the ceiling returns the frame as it came
    deliveries: (size) => size + 2 * (size - 1), // messageRoom to all; page + notify per recipient
  },
  typing: {
    server: {
      typingMessageStart: (p) => p.senderUsername,
      typingMessageStop: (p) => p.senderUsername,
    },
    deliveries: (size) => size - 1, // the room, not the typist
  },
};

const FILLER = " Hello! Is the apartment still free on Friday afternoon?";

function makeRooms(count, size, base) {
  const rooms = [];
  for (let i = 0; i < count; i++) {
    const members = [];
    for (let j = 0; j < size; j++) members.push(String(base + i * size + j));
    const id = members.join(":"); // consecutive ids of equal length: numeric order
    const unread = members.map((from) => members.filter((m) => m !== from).map((m) => (
      { recipientID: m, roomID: id, countNumber: 1, updateStatus: true })));
    rooms.push({ id, members, unread, sockets: [], sent: 0, received: 0 });
  }
  return rooms;
}

function payloadFor(kind, room, senderIndex, stamp) {
  const from = room.members[senderIndex];
  if (kind === "typing") {
    return [room.sent % 4 < 2 ? "startTypingRoom" : "stopTypingRoom",
      { roomID: room.id, user: { userID: from, username: stamp } }];
  }
  const text = stamp + FILLER;
  return ["message", {
    data: {
      message: text, from, roomID: room.id, fromUsername: "user" + from, roomKey: "room:" + room.id,
      lastMessage: text, unreadMessArray: room.unread[senderIndex], createRoomNotification: null,
      contact: false,
    },
  }];
}

async function relayScenario() {
  const kind = cfg.event; // "message" or "typing"
  const carrier = CARRIERS[kind];
  const readers = cfg.target === "echo" ? carrier.echo : carrier.server;
  if (!readers) throw new Error(`the ${cfg.target} target does not relay ${kind}`);
  const perMessage = carrier.deliveries(cfg.room_size);
  const rooms = makeRooms(cfg.rooms, cfg.room_size, cfg.user_base || 100000);

  // What a window records: latencies of what was sent inside it, deliveries that arrived inside it.
  let win = null;
  let mode = null; // {closed: window} or {open: rate}, while sending
  let totalSent = 0;
  let totalReceived = 0;

  function send(room) {
    const senderIndex = room.sent % room.members.length;
    const now = performance.now();
    const [event, payload] = payloadFor(kind, room, senderIndex, "t=" + now.toFixed(3));
    room.sockets[senderIndex].emit(event, payload);
    room.sent++;
    totalSent++;
    if (win && now >= win.start && now < win.end) win.sentInside++;
  }

  function refill(room) {
    while (mode && mode.closed && (room.sent * perMessage - room.received) <= (mode.closed - 1) * perMessage) {
      send(room);
    }
  }

  function onDelivery(room, text) {
    const now = performance.now();
    room.received++;
    totalReceived++;
    if (win) {
      const stamp = parseFloat(text.slice(2));
      if (stamp >= win.start && stamp < win.end) win.latencies.push(now - stamp);
      if (now >= win.start && now < win.end) win.arrived++;
    }
    if (mode && mode.closed) refill(room);
  }

  const setupStart = performance.now();
  const sockets = await pooled(rooms.length * cfg.room_size, cfg.connect_concurrency || 50, async (i) => {
    const room = rooms[Math.floor(i / cfg.room_size)];
    const member = room.members[i % cfg.room_size];
    // several processes (`urls`): consecutive sockets on consecutive processes, so that with
    // two or more every room spans two processes and every message crosses between them
    const url = cfg.urls ? cfg.urls[i % cfg.urls.length] : cfg.url;
    const socket = await connect(member, room.id, ACK_TIMEOUT_MS, url);
    for (const [event, read] of Object.entries(readers)) {
      socket.on(event, (p) => onDelivery(room, read(p)));
    }
    await ack(socket, "joinRoom", member);
    await ack(socket, "chatRoom.join", room.id);
    room.sockets[i % cfg.room_size] = socket;
    return socket;
  });
  // bystanders (`idle_urls`): online users on processes that carry none of the traffic
  const idle = [];
  for (const [n, url] of (cfg.idle_urls || []).entries()) {
    for (let j = 0; j < (cfg.idle_per_url || 0); j++) {
      const userID = String((cfg.user_base || 100000) + 900000 + n * 1000 + j);
      const socket = await connect(userID, null, ACK_TIMEOUT_MS, url);
      await ack(socket, "addOnlineUser", { userID, userUsername: "user" + userID });
      await ack(socket, "joinRoom", userID);
      idle.push(socket);
    }
  }
  out({ type: "ready", sockets: sockets.length, idle_sockets: idle.length,
    setup_s: round((performance.now() - setupStart) / 1000, 3) });

  async function drain(graceMs) {
    const until = performance.now() + graceMs;
    while (totalReceived < totalSent * perMessage && performance.now() < until) await sleep(20);
  }

  async function step(spec) {
    let timer = null;
    if (spec.closed) {
      mode = { closed: spec.closed };
      for (const room of rooms) refill(room);
    } else {
      mode = { open: spec.rate };
      const started = performance.now();
      let due = 0;
      timer = setInterval(() => {
        const target = Math.floor((performance.now() - started) * spec.rate / 1000);
        for (; due < target; due++) send(rooms[due % rooms.length]);
      }, 1);
    }
    await sleep(spec.warmup_s * 1000);
    const start = performance.now();
    win = { start, end: start + spec.duration_s * 1000, latencies: [], arrived: 0, sentInside: 0 };
    const usage = openWindow();
    await sleep(spec.duration_s * 1000);
    const measured = closeWindow(usage);
    if (timer) clearInterval(timer);
    mode = null;
    await drain(spec.grace_s * 1000);
    const recorded = win;
    win = null;
    await drain(5000); // whatever is still in flight must not leak into the next step
    const expected = recorded.sentInside * perMessage;
    const lost = expected - recorded.latencies.length;
    const msgPerS = recorded.arrived / perMessage / measured.seconds;
    const result = {
      type: "step", mode: spec.closed ? "closed" : "open", label: spec.label || null,
      offered_msg_s: spec.rate || null, window: spec.closed || null,
      msg_s: round(msgPerS, 1), deliveries_s: round(recorded.arrived / measured.seconds, 1),
      deliveries_per_msg: perMessage, sent: recorded.sentInside, lost_deliveries: lost,
      latency_ms: percentiles(recorded.latencies), ...measured,
    };
    result.saturated = Boolean(spec.rate) && (
      msgPerS < 0.95 * spec.rate || lost > 0.01 * expected || (result.latency_ms.p99 || 0) > 1000);
    out(result);
    return result;
  }

  let maxRate = null;
  for (const spec of cfg.closed_steps || []) {
    const result = await step(spec);
    if (result.valid) maxRate = Math.max(maxRate || 0, result.msg_s);
  }
  const levels = (cfg.open_levels || []).map((level) => ({ ...level }));
  if (cfg.open_fraction_of_max && maxRate) {
    for (const fraction of cfg.open_fraction_of_max) {
      levels.push({ rate: Math.max(1, Math.round(maxRate * fraction)), label: `${fraction} of max` });
    }
  }
  levels.sort((a, b) => a.rate - b.rate);
  let saturatedAt = null;
  for (const level of levels) {
    if (saturatedAt !== null && level.rate > saturatedAt) {
      out({ type: "skipped", offered_msg_s: level.rate, label: level.label || null,
        reason: `saturated at ${saturatedAt} msg/s` });
      continue;
    }
    const result = await step({ ...cfg.open_step, rate: level.rate, label: level.label });
    if (result.saturated) saturatedAt = level.rate;
  }
  for (const socket of sockets.concat(idle)) socket.close();
}

// ---------------------------------------------------------------- connect storm

async function stormScenario() {
  let nextUser = cfg.user_base || 500000;
  const population = [];
  let active = true;
  let win = null;
  let errors = 0;

  async function arrival() {
    const userID = String(nextUser++);
    const started = performance.now();
    let socket = null;
    try {
      socket = await connect(userID);
      socket.emit("addOnlineUser", { userID, userUsername: "user" + userID });
      await ack(socket, "joinRoom", userID);
    } catch (err) {
      errors++;
      if (socket) socket.close();
      return;
    }
    const now = performance.now();
    if (win && started >= win.start && started < win.end) win.latencies.push(now - started);
    if (win && now >= win.start && now < win.end) win.arrived++;
    population.push(socket);
    if (population.length > cfg.population) population.shift().close();
  }

  async function worker() {
    while (active) await arrival();
  }

  out({ type: "ready", sockets: 0, setup_s: 0 });
  const workers = Array.from({ length: cfg.concurrency }, worker);
  for (const spec of cfg.steps) {
    await sleep(spec.warmup_s * 1000);
    const start = performance.now();
    win = { start, end: start + spec.duration_s * 1000, latencies: [], arrived: 0 };
    const errorsBefore = errors;
    const usage = openWindow();
    await sleep(spec.duration_s * 1000);
    const measured = closeWindow(usage);
    const recorded = win;
    win = null;
    out({
      type: "step", mode: "closed", label: spec.label || null, concurrency: cfg.concurrency,
      population: cfg.population, connects_s: round(recorded.arrived / measured.seconds, 1),
      errors: errors - errorsBefore, latency_ms: percentiles(recorded.latencies), ...measured,
    });
  }
  active = false;
  await Promise.all(workers);
  for (const socket of population) socket.close();
}

// ---------------------------------------------------------------- idle capacity

async function idleScenario() {
  let nextUser = cfg.user_base || 1000000;
  const sockets = [];
  let errors = 0;
  out({ type: "ready", sockets: 0, setup_s: 0, server_rss_kb: serverRssKb() });

  async function probe() {
    const socket = sockets[sockets.length - 1];
    const times = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      await ack(socket, "joinRoom", socket.__userID);
      times.push(performance.now() - started);
    }
    return percentiles(times).p50;
  }

  await sleep(cfg.settle_s * 1000);
  out({ type: "step", sockets: 0, server_rss_kb: serverRssKb(), errors: 0 });
  for (const level of cfg.levels) {
    const held = sockets.length;
    const missing = level - held;
    const started = performance.now();
    const before = errors;
    const giveUp = Math.max(20, 0.01 * missing); // the process holds no more: stop trying
    await pooled(missing, cfg.connect_concurrency || 100, async () => {
      if (errors - before > giveUp) return;
      const userID = String(nextUser++);
      try {
        const socket = await connect(userID, null, IDLE_CONNECT_TIMEOUT_MS);
        socket.__userID = userID;
        await ack(socket, "joinRoom", userID);
        sockets.push(socket);
      } catch (err) {
        errors++;
      }
    });
    const rampSeconds = (performance.now() - started) / 1000;
    await sleep(cfg.settle_s * 1000);
    let probeMs = null;
    try {
      probeMs = sockets.length ? await probe() : null;
    } catch (err) {
      errors++;
    }
    out({
      type: "step", level, sockets: sockets.length, server_rss_kb: serverRssKb(),
      connects_s: round((sockets.length - held) / rampSeconds, 1), errors: errors - before, probe_ack_ms: probeMs,
    });
    if (errors - before > 0.01 * missing || probeMs === null) break;
  }
  for (const socket of sockets) socket.close();
}

// ---------------------------------------------------------------- main

const SCENARIOS = { relay: relayScenario, storm: stormScenario, idle: idleScenario };

SCENARIOS[cfg.scenario]()
  .then(() => { out({ type: "done" }); process.exit(0); })
  .catch((err) => { out({ type: "error", error: String(err && err.stack || err) }); process.exit(1); });
