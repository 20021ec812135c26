// socket.io-client 4.8.4 in Node on long-polling only, for tests/test_live_polling.py:
// `node polling_batch.js <url> <userID> <roomID> <count>`. Once connected and online, it emits
// <count> messages to <roomID> at once, each with an acknowledgement: the client sends the first
// in a POST of its own and batches the rest, queued meanwhile, into the next. It writes one JSON
// line, {acks: [[n, ack], ...]} in the order the acks came, and exits.
const { io } = require("socket.io-client");

const [url, userID, roomID, count] = process.argv.slice(2);
const socket = io(url, { transports: ["polling"], query: { userID }, reconnection: false });
const acks = [];

socket.on("connect", async () => {
  await socket.timeout(10000).emitWithAck("addOnlineUser", { userID, userUsername: `user${userID}` });
  const recipients = roomID.split(":").filter((id) => id !== userID);
  const sent = [];
  for (let n = 0; n < Number(count); n++) {
    const text = `batched ${n}`;
    const data = { message: text, from: userID, roomID, fromUsername: `user${userID}`,
      roomKey: `room:${roomID}`, lastMessage: text, createRoomNotification: null, contact: false,
      unreadMessArray: recipients.map((r) => ({ recipientID: r, roomID, countNumber: 1, updateStatus: true })) };
    sent.push(socket.timeout(20000).emitWithAck("message", { data }).then(
      (ack) => acks.push([n, ack]), (error) => acks.push([n, String(error)])));
  }
  await Promise.all(sent);
  process.stdout.write(JSON.stringify({ acks }) + "\n");
  socket.disconnect();
  setTimeout(() => process.exit(0), 100);
});
socket.on("connect_error", (error) => {
  process.stdout.write(JSON.stringify({ connect_error: String(error) }) + "\n");
  process.exit(1);
});
