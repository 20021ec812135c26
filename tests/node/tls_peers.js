// socket.io-client 4.8.4 in Node over TLS, for tests/test_live_tls.py:
// `node tls_peers.js <url> <ca.pem> <transports> <userIDs> [say]`. Opens a socket per user id
// (comma-separated), one after the other (transports comma-separated, e.g. "polling,websocket"),
// trusting only the certificate in <ca.pem>; each goes
// online and joins its own channel, and all stay open. With "say", the first sends a message to
// the private room of the first two. Then it writes one JSON line, {acks, transports, events}
// (per user: the acks in order, the transport it ended on, the events it received) and exits.
const fs = require("fs");
const { io } = require("socket.io-client");

const [url, caFile, transports, userIDs, say] = process.argv.slice(2);
const ca = fs.readFileSync(caFile);
const report = { acks: {}, transports: {}, events: {} };

function open(userID) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: transports.split(","), query: { userID }, ca, reconnection: false });
    report.acks[userID] = [];
    report.events[userID] = [];
    socket.onAny((event, ...args) => report.events[userID].push([event, args[0]]));
    socket.on("connect", async () => {
      for (const [event, data] of [["addOnlineUser", { userID, userUsername: "u" }], ["joinRoom", userID]]) {
        report.acks[userID].push(await socket.timeout(10000).emitWithAck(event, data).catch(String));
      }
      resolve(socket);
    });
    socket.on("connect_error", (error) => reject(error));
  });
}

(async () => {
  const sockets = [];
  const users = userIDs.split(",");
  for (const userID of users) sockets.push(await open(userID));
  // a polling socket upgrades in the background: wait until each is on the websocket, or 5 s
  for (let waited = 0; waited < 5000 && sockets.some((s) => s.io.engine.transport.name !== "websocket"); waited += 50) {
    if (!transports.includes("websocket")) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  users.forEach((userID, n) => { report.transports[userID] = sockets[n].io.engine.transport.name; });
  users.forEach((userID) => { report.events[userID] = []; });
  if (say) {
    const [a, b] = users;
    const roomID = [a, b].sort((x, y) => Number(BigInt(x) - BigInt(y))).join(":");
    const data = { message: say, from: a, roomID, fromUsername: `user${a}`, roomKey: `room:${roomID}`,
      lastMessage: say, createRoomNotification: null, contact: false,
      unreadMessArray: [{ recipientID: b, roomID, countNumber: 1, updateStatus: true }] };
    report.acks[a].push(await sockets[0].timeout(10000).emitWithAck("message", { data }).catch(String));
    await new Promise((r) => setTimeout(r, 500));
  }
  process.stdout.write(JSON.stringify(report) + "\n");
  sockets.forEach((s) => s.disconnect());
  setTimeout(() => process.exit(0), 100);
})().catch((error) => {
  process.stdout.write(JSON.stringify({ error: String(error) }) + "\n");
  process.exit(1);
});
