// Many socket.io-client 4.8.4 sockets in one Node process, each chatting in its private room, for
// tests/test_live_chaos.py: `node chaos_client.js <config.json>`.
// The config: {seed, pauseMs: [min, max], ackTimeoutMs, sockets: [{url, userID, room, peerID}]}.
// Each socket joins as the React client does on every connect that is not a recovery
// (addOnlineUser, joinRoom, chatRoom.join, retried until ok); once told {"start": true} on stdin,
// it sends `message` after `message`, the next once the previous one was answered (or timed out),
// until {"stop": true}. One JSON object a line on stdout, `t` the ms since start:
// {t, s, connect, recovered} {t, s, disconnect} {t, s, joined}
// {t, s, k, sent} {t, s, k, ack: "ok" | <error code> | "timeout"}
// {t, s, event, from, k} for messageRoom and messageResponseNotify, {t, s, event: "error", code}.
const fs = require("fs");
const readline = require("readline");
const { io } = require("socket.io-client");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const started = Date.now();
const say = (message) => process.stdout.write(JSON.stringify({ t: Date.now() - started, ...message }) + "\n");

// mulberry32: the pauses follow from the test's seed
let state = config.seed >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pause = () => config.pauseMs[0] + random() * (config.pauseMs[1] - config.pauseMs[0]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let sending = false;
let stopped = false;

function message(spec, text) {
  return {
    data: {
      message: text, from: spec.userID, roomID: spec.room, fromUsername: `user${spec.userID}`,
      roomKey: `room:${spec.room}`, lastMessage: text,
      unreadMessArray: [{ recipientID: spec.peerID, roomID: spec.room, countNumber: 1, updateStatus: true }],
      createRoomNotification: null, contact: false,
    },
  };
}

// the number after "#" in a text written by message(): the sender's sequence number
const numberOf = (text) => Number(String(text).split("#")[1]);

function start(spec, s) {
  const socket = io(spec.url, {
    transports: ["websocket"], query: { userID: spec.userID }, forceNew: true,
    reconnectionDelay: 100, reconnectionDelayMax: 500,
  });
  const member = { socket, joined: false, session: 0 };

  async function join(session) {
    const steps = [["addOnlineUser", { userID: spec.userID, userUsername: `user${spec.userID}` }],
      ["joinRoom", spec.userID], ["chatRoom.join", spec.room]];
    for (const [event, data] of steps) {
      for (;;) {
        if (member.session !== session || stopped) return;
        try {
          const ack = await socket.timeout(config.ackTimeoutMs).emitWithAck(event, data);
          if (ack && ack.ok) break;
        } catch (error) { /* timed out: again */ }
        await sleep(300);
      }
    }
    if (member.session === session) {
      member.joined = true;
      say({ s, joined: true });
    }
  }

  socket.on("connect", () => {
    say({ s, connect: socket.id, recovered: socket.recovered });
    if (!socket.recovered) {
      member.joined = false;
      member.session += 1;
      join(member.session);
    }
  });
  socket.on("disconnect", (reason) => say({ s, disconnect: reason }));
  socket.onAny((event, ...args) => {
    const payload = args[0] || {};
    if (event === "messageRoom") say({ s, event, from: payload.from, k: numberOf(payload.message) });
    else if (event === "messageResponseNotify") say({ s, event, from: payload.fromUserID, k: numberOf(payload.lastMessage) });
    else if (event === "error") say({ s, event, code: payload.code });
  });

  (async () => {
    let k = 0;
    while (!stopped) {
      if (!sending || !member.joined || !socket.connected) {
        await sleep(50);
        continue;
      }
      k += 1;
      say({ s, k, sent: true });
      let answer;
      try {
        const ack = await socket.timeout(config.ackTimeoutMs).emitWithAck("message", message(spec, `${spec.userID}#${k}`));
        answer = ack && ack.ok ? "ok" : (ack && ack.code) || "malformed";
      } catch (error) {
        answer = "timeout";
      }
      say({ s, k, ack: answer });
      await sleep(pause());
    }
  })();
  return member;
}

const members = config.sockets.map(start);

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.start) sending = true;
  if (command.stop) sending = false;
  if (command.exit) {
    stopped = true;
    for (const member of members) member.socket.disconnect();
    setTimeout(() => process.exit(0), 200);
  }
}).on("close", () => process.exit(0));
