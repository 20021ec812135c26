// The Node.js peer: a minimal Socket.IO 4 server relaying the same events the way the
// original HomeApp server does: plain io.to(room).emit, no validation, presence kept with
// SADD/SREM on the Redis set `onlineUsers` when REDIS_URL is set (in memory otherwise).
// It is a yardstick for bench/, not a product: it trusts its clients like the original did.
//
//   PORT=5082 [REDIS_URL=redis://127.0.0.1:6390/0] node bench/peers/node-server/server.js
//
// Acknowledgements are answered with {ok: true} where the client asks for one, so that the
// load generator can time the connect storm on this peer exactly as on the Python server.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 5082);
const redisUrl = process.env.REDIS_URL || "";
const ONLINE_USERS = "onlineUsers";

function ack(cb) {
  if (typeof cb === "function") cb({ ok: true });
}

const userChannel = (id) => "user:" + id;
const roomChannel = (id) => "room:" + id;
const recipientsOf = (roomID, from) => String(roomID).split(":").filter((m) => m !== String(from));

async function presenceStore() {
  if (!redisUrl) {
    const online = new Set();
    return { add: async (id) => online.add(id), remove: async (id) => online.delete(id) };
  }
  const { createClient } = require("redis");
  const client = createClient({ url: redisUrl });
  client.on("error", (err) => console.error("redis:", err.message));
  await client.connect();
  return {
    add: (id) => client.sAdd(ONLINE_USERS, id),
    remove: (id) => client.sRem(ONLINE_USERS, id),
  };
}

async function main() {
  const presence = await presenceStore();
  const httpServer = http.createServer();
  const io = new Server(httpServer, { cors: { origin: "*" } });

  io.on("connection", (socket) => {
    let userID = null; // set by addOnlineUser: only such sockets count for presence

    socket.on("addOnlineUser", async (data, cb) => {
      userID = String(data.userID);
      await presence.add(userID);
      io.emit("newOnlineUser", { type: "Add", userID });
      ack(cb);
    });
    socket.on("joinRoom", (id, cb) => { socket.join(userChannel(id)); ack(cb); });
    socket.on("leaveRoom", (id, cb) => { socket.leave(userChannel(id)); ack(cb); });
    socket.on("chatRoom.join", (roomID, cb) => { socket.join(roomChannel(roomID)); ack(cb); });
    socket.on("chatRoom.leave", (roomID, cb) => { socket.leave(roomChannel(roomID)); ack(cb); });

    socket.on("message", ({ data }, cb) => {
      const { message, from, roomID, fromUsername } = data;
      const lastMessage = data.lastMessage || message;
      const now = new Date();
      const date = data.date || {
        day: now.getDate(), month: now.getMonth() + 1, year: now.getFullYear(),
        time: now.toTimeString().slice(0, 5),
      };
      io.to(roomChannel(roomID)).emit("messageRoom", { message, from, roomID, fromUsername, date });
      const unread = new Map((data.unreadMessArray || []).map((e) => [String(e.recipientID), e.updateStatus]));
      for (const recipient of recipientsOf(roomID, from)) {
        if (data.contact) {
          io.to(userChannel(recipient)).emit("firstMessageConversation", { roomID, from, fromUsername, lastMessage });
        } else {
          io.to(userChannel(recipient)).emit("messagePage", { roomID, lastMessage });
        }
        io.to(userChannel(recipient)).emit("messageResponseNotify", {
          roomID, fromUsername, fromUserID: from, userID: recipient, lastMessage,
          unreadUpdateStatus: unread.has(recipient) ? unread.get(recipient) : null,
          createRoomNotification: data.createRoomNotification || null,
        });
      }
      ack(cb);
    });

    const typing = (event) => ({ roomID, user }, cb) => {
      socket.to(roomChannel(roomID)).emit(event, { senderID: user.userID, senderUsername: user.username, roomID });
      ack(cb);
    };
    socket.on("startTypingRoom", typing("typingMessageStart"));
    socket.on("stopTypingRoom", typing("typingMessageStop"));

    socket.on("disconnect", async () => {
      if (userID === null) return;
      await presence.remove(userID);
      io.emit("newOnlineUser", { type: "Remove", userID });
    });
  });

  httpServer.listen(port, "127.0.0.1", () => {
    console.log(`node peer on http://127.0.0.1:${port}/`);
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
