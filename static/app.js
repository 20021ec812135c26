/* The demo page: several users at once, one Socket.IO connection each.
 *
 * Payload defaults follow contract.md: room ids are member ids sorted numerically,
 * a sender is always the panel's own user, and each notification is addressed to
 * the member that should see it.
 */
"use strict";

const AUTH_MODE = document.body.dataset.authMode || "open";
const LOG_LIMIT = 200;
const ACK_TIMEOUT_MS = 5000;
const DEFAULT_USERS = [
  { userID: "1", username: "john_doe" },
  { userID: "2", username: "jane" },
  { userID: "3", username: "sara_cleaner" },
];

/* ---------- room ids ---------- */

function compareIds(a, b) {
  // user ids have up to 20 digits, more than a Number holds exactly
  const x = BigInt(a), y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function canonical(ids) {
  return [...new Set(ids)].sort(compareIds).join(":");
}

function membersOf(roomID) {
  return roomID.split(":");
}

function othersIn(roomID, userID) {
  return membersOf(roomID).filter((id) => id !== userID);
}

/* ---------- page state ---------- */

const state = {
  panels: [],          // in page order
  roomMembers: null,   // Set of user ids checked in the scenario; null until first render
  newcomer: null,      // user id chosen in the scenario
  seq: 0,              // orders log entries across panels
  nextRecordId: 400,   // ids of the notifications and comments the page makes up
};

function roster() {
  const seen = new Map();
  for (const panel of state.panels) {
    if (!seen.has(panel.userID)) seen.set(panel.userID, panel.username);
  }
  return [...seen].map(([userID, username]) => ({ userID, username }));
}

function usernameOf(userID) {
  const user = roster().find((u) => u.userID === userID);
  return user ? user.username : `user${userID}`;
}

function freshUserID(taken) {
  let max = 0n;
  for (const id of taken) if (BigInt(id) > max) max = BigInt(id);
  return String(max + 1n);
}

/* ---------- scenario: the rooms the defaults are built from ---------- */

function scenarioRoom() {
  const ids = roster().map((u) => u.userID);
  const chosen = ids.filter((id) => state.roomMembers && state.roomMembers.has(id));
  if (chosen.length >= 2) return canonical(chosen);
  const fallback = chosen.concat(ids.filter((id) => !chosen.includes(id))).slice(0, 2);
  return fallback.length >= 2 ? canonical(fallback) : canonical([...fallback, freshUserID(fallback)]);
}

function newcomerFor(roomID) {
  const members = membersOf(roomID);
  if (state.newcomer && !members.includes(state.newcomer)) return state.newcomer;
  const outside = roster().find((u) => !members.includes(u.userID));
  return outside ? outside.userID : freshUserID(members);
}

function scenarioGroup() {
  const room = scenarioRoom();
  return canonical([...membersOf(room), newcomerFor(room)]);
}

/* The room a panel's room events use: the scenario room if its user is a member, else the group. */
function roomFor(userID) {
  const room = scenarioRoom();
  if (membersOf(room).includes(userID)) return room;
  const group = scenarioGroup();
  if (membersOf(group).includes(userID)) return group;
  const other = roster().find((u) => u.userID !== userID);
  return canonical([userID, other ? other.userID : freshUserID([userID])]);
}

/* A group (three or more members) the panel's user is in: its room, or its room plus the newcomer. */
function groupFor(userID) {
  const room = roomFor(userID);
  if (membersOf(room).length >= 3) return room;
  return canonical([...membersOf(room), newcomerFor(room)]);
}

/* ---------- payload builders, one per client event ---------- */

function now() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return { day: d.getDate(), month: d.getMonth() + 1, year: d.getFullYear(),
           time: `${pad(d.getHours())}:${pad(d.getMinutes())}` };
}

function notification(from, to, type, message) {
  return { id: state.nextRecordId++, from, to, type, date: now(), message, read: false };
}

function typing(panel) {
  return { roomID: roomFor(panel.userID), user: { userID: panel.userID, username: panel.username } };
}

function newMember(panel, notifyNewcomer, notifyMember) {
  const roomID = roomFor(panel.userID);
  const newUserID = newcomerFor(roomID);
  const newUsername = usernameOf(newUserID);
  const newRoomID = canonical([...membersOf(roomID), newUserID]);
  return { data: {
    newUserID, newUsername, roomID, newRoomID,
    currentMember: othersIn(roomID, panel.userID).map((id) => ({ userID: id, username: usernameOf(id) })),
    clientID: panel.userID,
    clientUsername: panel.username,
    newUserPicturePath: null,
    online: panel.online.has(newUserID),
    notifications: othersIn(newRoomID, panel.userID).map((to) => notification(
      panel.userID, to, "chatGroup",
      to === newUserID ? notifyNewcomer : notifyMember.replace("{new}", newUsername))),
  } };
}

function kick(panel) {
  const roomID = groupFor(panel.userID);
  const others = othersIn(roomID, panel.userID);
  const room = scenarioRoom();
  const newcomer = newcomerFor(room);
  const kickedUserID = others.includes(newcomer) ? newcomer : others[others.length - 1];
  const newRoomID = canonical(membersOf(roomID).filter((id) => id !== kickedUserID));
  const firstOther = othersIn(newRoomID, panel.userID)[0];
  const kickedUsername = usernameOf(kickedUserID);
  return {
    firstRoomID: canonical([panel.userID, firstOther]),
    roomID, newRoomID, kickedUserID, kickedUsername,
    clientID: panel.userID,
    clientUsername: panel.username,
    notifications: others.map((to) => notification(panel.userID, to, "chatGroup",
      to === kickedUserID ? "You've been removed from the group"
                          : `${panel.username} removed ${kickedUsername} from the group`)),
  };
}

function houseworkerFor(panel) {
  return othersIn(roomFor(panel.userID), panel.userID)[0];
}

const CLIENT_EVENTS = [
  { group: "Presence", name: "addOnlineUser",
    build: (p) => ({ userID: p.userID, userUsername: p.username }) },
  { group: "Presence", name: "joinRoom", build: (p) => p.userID },
  { group: "Presence", name: "leaveRoom", build: (p) => p.userID },
  { group: "Chat rooms", name: "chatRoom.join", build: (p) => roomFor(p.userID) },
  { group: "Chat rooms", name: "chatRoom.leave", build: (p) => roomFor(p.userID) },
  { group: "Messaging", name: "message", build: (p) => {
      const roomID = roomFor(p.userID);
      const text = `Hello from ${p.username}!`;
      return { data: {
        message: text, from: p.userID, roomID, fromUsername: p.username,
        roomKey: `room:${roomID}`, lastMessage: text,
        unreadMessArray: othersIn(roomID, p.userID).map((id) => (
          { recipientID: id, roomID, countNumber: 1, updateStatus: true })),
        createRoomNotification: null, contact: false,
      } };
    } },
  { group: "Typing", name: "startTypingRoom", build: typing },
  { group: "Typing", name: "stopTypingRoom", build: typing },
  { group: "Groups", name: "createUserGroup",
    build: (p) => newMember(p, `The client ${p.username} has added you to the chat`,
                            `${p.username} has added {new} to the chat`) },
  { group: "Groups", name: "addUserToGroup",
    build: (p) => newMember(p, `You've been added to the group by ${p.username}`,
                            `${p.username} has added {new} to the group`) },
  { group: "Groups", name: "kickUserFromGroup", build: kick },
  { group: "Groups", name: "deleteUserRoom", build: (p) => ({
      roomID: groupFor(p.userID), clientID: p.userID, clientUsername: p.username,
      notifications: [notification(p.userID, "room", "chatGroup",
                                   `The room has been deleted by ${p.username}`)],
    }) },
  { group: "Notifications", name: "commentNotification", build: (p) => {
      const houseworkerID = houseworkerFor(p);
      const d = now();
      const pad = (n) => String(n).padStart(2, "0");
      return {
        newComment: { commentID: state.nextRecordId++, comment: "Great service!", from: p.username,
                      houseworkerID, date: `${pad(d.day)}.${pad(d.month)}.${d.year}`, read: false },
        notificationObj: notification(p.userID, houseworkerID, "comment",
                                      `You've got comment from ${p.username}`),
      };
    } },
  { group: "Notifications", name: "ratingNotification", build: (p) => {
      const houseworkerID = houseworkerFor(p);
      return { client: p.username, houseworker: usernameOf(houseworkerID), rating: 5, houseworkerID,
               notification: notification(p.userID, houseworkerID, "rating",
                                          `The user ${p.username} has rated you with 5`) };
    } },
];

const EVENT_BY_NAME = new Map(CLIENT_EVENTS.map((e) => [e.name, e]));

/* ---------- small DOM helpers ---------- */

function $(root, role) {
  return root.querySelector(`[data-role="${role}"]`);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function pretty(value) {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

/* One line when it fits, so that a log shows many entries at a glance. */
function compact(value) {
  const line = JSON.stringify(value);
  return line !== undefined && line.length <= 72 ? line : pretty(value);
}

function clock() {
  return new Date().toLocaleTimeString([], { hour12: false });
}

/* ---------- a panel ---------- */

function panelKey(userID) {
  const used = new Set(state.panels.map((p) => p.key));
  if (!used.has(userID)) return userID;
  let n = 2;
  while (used.has(`${userID}-${n}`)) n += 1;
  return `${userID}-${n}`;
}

function createPanel(userID, username) {
  const root = document.getElementById("panel-template").content.firstElementChild.cloneNode(true);
  const panel = { key: panelKey(userID), userID, username, root, socket: null,
                  online: new Set(), onlineBuffer: null, event: "addOnlineUser" };
  root.dataset.panel = panel.key;
  root.dataset.user = userID;
  $(root, "username").textContent = username;
  $(root, "user-id").textContent = userID;
  $(root, "server-url").value = window.location.origin;
  if (AUTH_MODE !== "jwt") $(root, "token-label").remove();

  const buttons = $(root, "events");
  let group = null, box = null;
  for (const event of CLIENT_EVENTS) {
    if (event.group !== group) {
      group = event.group;
      box = el("div", { class: "event-list" });
      buttons.append(el("div", { class: "event-group" }, el("span", { class: "event-group-name" }, group), box));
    }
    const button = el("button", { type: "button", class: "event-btn", dataset: { event: event.name } }, event.name);
    button.addEventListener("click", () => choose(panel, event.name));
    box.append(button);
  }

  $(root, "connect").addEventListener("click", () => connect(panel));
  $(root, "disconnect").addEventListener("click", () => disconnect(panel));
  $(root, "remove").addEventListener("click", () => removePanel(panel));
  $(root, "send").addEventListener("click", () => send(panel));
  $(root, "reset").addEventListener("click", () => choose(panel, panel.event));
  $(root, "clear-log").addEventListener("click", () => { $(root, "log").replaceChildren(); });

  state.panels.push(panel);
  document.getElementById("panels").append(root);
  return panel;
}

/* Select an event in the panel's composer and fill in its default payload. */
function choose(panel, name) {
  panel.event = name;
  for (const button of panel.root.querySelectorAll(".event-btn")) {
    button.setAttribute("aria-pressed", String(button.dataset.event === name));
  }
  $(panel.root, "chosen-event").textContent = name;
  $(panel.root, "payload").value = pretty(EVENT_BY_NAME.get(name).build(panel));
  panel.root.dataset.chosenEvent = name;
}

function setStatus(panel, status, detail = "") {
  const node = $(panel.root, "status");
  node.dataset.state = status;
  node.textContent = detail ? `${status}: ${detail}` : status;
  $(panel.root, "sid").textContent = panel.socket && panel.socket.id ? `sid ${panel.socket.id}` : "";
}

function addLog(panel, kind, name, payload, isError = false) {
  state.seq += 1;
  const entry = el("li", { class: `entry ${kind}${isError ? " error" : ""}`,
                           dataset: { kind, name, seq: String(state.seq) } },
    el("div", { class: "entry-head" },
      el("span", { class: "entry-name" }, name),
      el("span", { class: "entry-kind" }, kind),
      el("time", {}, clock())));
  if (payload !== undefined) entry.append(el("pre", { class: "entry-payload" }, compact(payload)));
  const log = $(panel.root, "log");
  log.prepend(entry);
  while (log.children.length > LOG_LIMIT) log.lastElementChild.remove();
}

/* ---------- the online list ---------- */

function renderOnline(panel) {
  const list = $(panel.root, "online");
  const ids = [...panel.online].sort(compareIds);
  list.replaceChildren(...ids.map((id) => el("li", { class: "chip", dataset: { user: id } },
    `${usernameOf(id)} #${id}`)));
  if (!ids.length) list.append(el("li", { class: "empty" }, "nobody yet"));
}

function applyPresence(panel, change) {
  if (panel.onlineBuffer) { panel.onlineBuffer.push(change); return; }
  if (change.type === "Add") panel.online.add(String(change.userID));
  if (change.type === "Remove") panel.online.delete(String(change.userID));
  renderOnline(panel);
}

/* Seed from the REST list, then replay what newOnlineUser said meanwhile, in order. */
async function seedOnline(panel) {
  panel.onlineBuffer = [];
  try {
    // the page's own origin: in a Redis deployment every process reports the same set
    const response = await fetch("/api/online-users", { cache: "no-store" });
    const ids = await response.json();
    panel.online = new Set(ids.map(String));
  } catch (error) {
    addLog(panel, "lifecycle", "online-users", { error: String(error) }, true);
  }
  const buffered = panel.onlineBuffer;
  panel.onlineBuffer = null;
  for (const change of buffered) applyPresence(panel, change);
  renderOnline(panel);
}

/* ---------- the connection ---------- */

function connect(panel) {
  if (typeof io === "undefined") return;
  disconnect(panel);
  const options = {
    query: { userID: panel.userID },
    forceNew: true,  // one connection per panel, never a shared one
    transports: ["websocket", "polling"],
  };
  const tokenBox = $(panel.root, "token");
  if (AUTH_MODE === "jwt" && tokenBox) options.auth = { token: tokenBox.value.trim() };
  const socket = io($(panel.root, "server-url").value || window.location.origin, options);
  panel.socket = socket;
  setStatus(panel, "connecting");

  socket.on("connect", () => {
    setStatus(panel, "connected");
    addLog(panel, "lifecycle", "connect", { sid: socket.id });
    seedOnline(panel);
    if (document.getElementById("auto-identify").checked) {
      emit(panel, "addOnlineUser", EVENT_BY_NAME.get("addOnlineUser").build(panel));
      emit(panel, "joinRoom", panel.userID);
    }
  });
  socket.on("disconnect", (reason) => {
    setStatus(panel, "disconnected", reason);
    panel.online.clear();  // stale until the next connect seeds it again
    renderOnline(panel);
    addLog(panel, "lifecycle", "disconnect", { reason });
  });
  socket.on("connect_error", (error) => {
    setStatus(panel, "refused", error.message);
    addLog(panel, "lifecycle", "connect_error", { message: error.message, data: error.data }, true);
  });
  socket.onAny((event, ...args) => {
    const payload = args.length === 1 ? args[0] : args;
    addLog(panel, "event", event, payload, event === "error");
    if (event === "newOnlineUser" && payload) applyPresence(panel, payload);
  });
}

function disconnect(panel) {
  if (!panel.socket) return;
  panel.socket.disconnect();
  panel.socket = null;
  panel.online.clear();
  renderOnline(panel);
}

function emit(panel, event, payload) {
  const ack = $(panel.root, "ack");
  ack.dataset.state = "pending";
  ack.textContent = `${event}: waiting for the ack…`;
  panel.socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (timeoutError, response) => {
    const failed = Boolean(timeoutError) || !response || response.ok !== true;
    ack.dataset.state = failed ? "error" : "ok";
    ack.dataset.for = event;
    ack.textContent = timeoutError ? `${event}: no ack within ${ACK_TIMEOUT_MS / 1000} s`
                                   : `${event} ack:\n${pretty(response)}`;
    addLog(panel, "ack", `ack ${event}`, timeoutError ? { error: "timeout" } : response, failed);
  });
}

function send(panel) {
  const ack = $(panel.root, "ack");
  let payload;
  try {
    payload = JSON.parse($(panel.root, "payload").value);
  } catch (error) {
    ack.dataset.state = "error";
    ack.textContent = `Not sent: the payload is not valid JSON (${error.message}).`;
    return;
  }
  if (!panel.socket) {
    ack.dataset.state = "error";
    ack.textContent = "Not sent: this panel is not connected.";
    return;
  }
  emit(panel, panel.event, payload);
}

function removePanel(panel) {
  disconnect(panel);
  panel.root.remove();
  state.panels = state.panels.filter((p) => p !== panel);
  refreshScenario();
}

/* ---------- scenario controls ---------- */

function refreshScenario() {
  const users = roster();
  const ids = users.map((u) => u.userID);
  if (state.roomMembers === null) state.roomMembers = new Set(ids.slice(0, 2));
  for (const id of [...state.roomMembers]) if (!ids.includes(id)) state.roomMembers.delete(id);
  const room = scenarioRoom();
  // the boxes show the room actually used, fallback members included
  state.roomMembers = new Set(membersOf(room).filter((id) => ids.includes(id)));

  const box = document.getElementById("scenario-room");
  box.querySelectorAll("label").forEach((node) => node.remove());
  for (const user of users) {
    const input = el("input", { type: "checkbox", dataset: { user: user.userID } });
    input.checked = membersOf(room).includes(user.userID);
    // a room has at least two members: the last two stay checked until a third is
    input.disabled = input.checked && state.roomMembers.size <= 2;
    input.title = input.disabled ? "A room needs two members: check another one first." : "";
    input.addEventListener("change", () => {
      if (input.checked) state.roomMembers.add(user.userID);
      else state.roomMembers.delete(user.userID);
      refreshScenario();
    });
    box.append(el("label", { class: "check" }, input, ` ${user.username} #${user.userID}`));
  }

  const select = document.getElementById("scenario-newcomer");
  const outside = users.filter((u) => !membersOf(room).includes(u.userID));
  if (!outside.some((u) => u.userID === state.newcomer)) state.newcomer = outside.length ? outside[0].userID : null;
  select.replaceChildren(...outside.map((u) => el("option", { value: u.userID }, `${u.username} #${u.userID}`)));
  if (!outside.length) select.append(el("option", { value: "" }, `user #${newcomerFor(room)} (no panel)`));
  select.value = state.newcomer || "";

  document.getElementById("scenario-room-id").textContent = room;
  document.getElementById("scenario-group-id").textContent = scenarioGroup();
  for (const panel of state.panels) {
    choose(panel, panel.event);
    renderOnline(panel);
  }
}

function addPanel(userID, username) {
  const panel = createPanel(userID, username);
  refreshScenario();
  connect(panel);
  return panel;
}

/* ---------- start ---------- */

function start() {
  document.getElementById("server-origin").textContent = window.location.origin;
  if (typeof io === "undefined") document.getElementById("missing-client").hidden = false;

  document.getElementById("scenario-newcomer").addEventListener("change", (event) => {
    state.newcomer = event.target.value || null;
    refreshScenario();
  });
  document.getElementById("clear-logs").addEventListener("click", () => {
    for (const panel of state.panels) $(panel.root, "log").replaceChildren();
  });
  document.getElementById("add-panel-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const userID = form.userID.value.trim();
    const username = form.username.value.trim();
    if (!/^[0-9]{1,20}$/.test(userID) || !username) return;
    addPanel(userID, username);
    form.reset();
    suggestNextUser();
  });

  const panels = DEFAULT_USERS.map((user) => createPanel(user.userID, user.username));
  refreshScenario();
  panels.forEach(connect);
  suggestNextUser();
}

function suggestNextUser() {
  const form = document.getElementById("add-panel-form");
  const next = freshUserID(roster().map((u) => u.userID));
  form.userID.value = next;
  form.username.value = `user${next}`;
}

start();
