// socket.io-client 4.8.4 (the demo page's version) in Node, as the React client uses it, for
// tests/test_live_recovery.py: `node recovery_client.js <url> <userID>`.
// It writes one JSON object a line for what happens to the socket: {connect, recovered},
// {disconnect}, {event, args} (args as the listeners get them: with recovery on, the offset is
// the last one), {n, ack}. It reads one a line: {n, call, data} emits with an acknowledgement;
// {close: true} disconnects (the client's own disconnect) and exits.
// Reconnection is the library's own, quicker than its defaults so that a test need not wait.
const readline = require("readline");
const { io } = require("socket.io-client");

const [url, userID] = process.argv.slice(2);
const socket = io(url, {
  transports: ["websocket"],
  query: { userID },
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
});
const say = (message) => process.stdout.write(JSON.stringify(message) + "\n");

socket.on("connect", () => say({ connect: socket.id, recovered: socket.recovered }));
socket.on("disconnect", (reason) => say({ disconnect: reason }));
socket.onAny((event, ...args) => say({ event, args }));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.close) {
    socket.disconnect();
    setTimeout(() => process.exit(0), 100);  // the 41 packet leaves first
    return;
  }
  socket.timeout(5000).emitWithAck(command.call, command.data).then(
    (ack) => say({ n: command.n, ack }),
    (error) => say({ n: command.n, error: String(error) }));
}).on("close", () => process.exit(0));
