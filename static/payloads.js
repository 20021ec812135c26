/* The default payload of every client event: the project's example of it, adapted to a panel.
 *
 * The examples (homeapp/schemas/examples.py, rendered into the page as JSON) are written as
 * user "1" sends them, in the private room "1:2" and the group "1:2:3". Adapting one means:
 * the sender fields become the panel's user, room ids are built from the scenario's users,
 * each notification goes to a member who should see it, and the example's usernames in its
 * texts become the page's.
 */
import {
  canonical, groupFor, membersOf, newcomerFor, othersIn, roomFor, scenarioRoom, usernameOf,
} from "./scenario.js";

export const ADD_ONLINE_USER = "addOnlineUser";
export const JOIN_ROOM = "joinRoom";

const EXAMPLES = JSON.parse(document.getElementById("examples").textContent);

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** value with every whole-word occurrence of a key of `names` replaced by its value. */
function renamed(value, names) {
  const keys = Object.keys(names).filter((name) => name);
  if (!keys.length) return value;
  // one pass, so that a new name is never renamed again
  const pattern = new RegExp(`\\b(${keys.map(escapeRegExp).join("|")})\\b`, "g");
  const walk = (v) => {
    if (typeof v === "string") return v.replace(pattern, (name) => names[name]);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([key, item]) => [key, walk(item)]));
    }
    return v;
  };
  return walk(value);
}

/* One notification per recipient, made from the example's: one addressed to "room" stays the
 * only one (it matches everybody); otherwise the member the event is about (the newcomer, the
 * kicked user) gets the example's notification for that member, everyone else the other one. */
function addressed(examples, recipients, about, panel, names) {
  const adapt = (example, to, index) => ({
    ...renamed(example, names), id: examples[0].id + index, from: panel.userID, to });
  const toRoom = examples.find((n) => n.to === "room");
  if (toRoom) return [adapt(toRoom, "room", 0)];
  const forAbout = examples.find((n) => n.to === about.example) || examples[0];
  const forOthers = examples.find((n) => n.to !== about.example) || examples[0];
  return recipients.map((to, index) => adapt(to === about.page ? forAbout : forOthers, to, index));
}

/* Now, in the shapes the examples date things: {day, month, year, time "HH:MM"}, and a comment's
 * "DD.MM.YYYY". The examples' own date is a fixed day in the past. */
function today() {
  const now = new Date();
  const two = (n) => String(n).padStart(2, "0");
  return { day: now.getDate(), month: now.getMonth() + 1, year: now.getFullYear(),
           time: `${two(now.getHours())}:${two(now.getMinutes())}`,
           text: `${two(now.getDate())}.${two(now.getMonth() + 1)}.${now.getFullYear()}` };
}

function isDate(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    && Object.keys(value).sort().join() === "day,month,time,year";
}

/** value with every date of the example's shape replaced by now. */
function dated(value, now) {
  if (isDate(value)) return { day: now.day, month: now.month, year: now.year, time: now.time };
  if (Array.isArray(value)) return value.map((item) => dated(item, now));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, dated(item, now)]));
  }
  return value;
}

function memberList(ids) {
  return ids.map((id) => ({ userID: id, username: usernameOf(id) }));
}

/* createUserGroup and addUserToGroup: the panel's room plus the scenario's newcomer. */
function newMember(example, panel) {
  const data = example.data;
  const roomID = roomFor(panel.userID);
  const newUserID = newcomerFor(roomID);
  const newUsername = usernameOf(newUserID);
  const newRoomID = canonical([...membersOf(roomID), newUserID]);
  const names = { [data.clientUsername]: panel.username, [data.newUsername]: newUsername };
  return { ...example, data: {
    ...renamed(data, names),
    newUserID, newUsername, roomID, newRoomID,
    currentMember: memberList(othersIn(roomID, panel.userID)),
    clientID: panel.userID,
    clientUsername: panel.username,
    online: panel.online.has(newUserID),
    notifications: addressed(data.notifications, othersIn(newRoomID, panel.userID),
                             { example: data.newUserID, page: newUserID }, panel, names),
  } };
}

/* kickUserFromGroup: the newcomer leaves the panel's group (or its last member, without one). */
function kick(example, panel) {
  const roomID = groupFor(panel.userID);
  const others = othersIn(roomID, panel.userID);
  const newcomer = newcomerFor(scenarioRoom());
  const kickedUserID = others.includes(newcomer) ? newcomer : others[others.length - 1];
  const kickedUsername = usernameOf(kickedUserID);
  const newRoomID = canonical(membersOf(roomID).filter((id) => id !== kickedUserID));
  const names = { [example.clientUsername]: panel.username, [example.kickedUsername]: kickedUsername };
  return {
    ...renamed(example, names),
    firstRoomID: canonical([panel.userID, othersIn(newRoomID, panel.userID)[0]]),
    roomID, newRoomID, kickedUserID, kickedUsername,
    clientID: panel.userID,
    clientUsername: panel.username,
    notifications: addressed(example.notifications, others,
                             { example: example.kickedUserID, page: kickedUserID }, panel, names),
  };
}

/* The comment and the rating are about the other member of the panel's room. */
function houseworkerOf(panel) {
  return othersIn(roomFor(panel.userID), panel.userID)[0];
}

function comment(example, panel) {
  const houseworkerID = houseworkerOf(panel);
  const adapted = renamed(example, { [example.newComment.from]: panel.username });
  return { ...adapted,
    newComment: { ...adapted.newComment, from: panel.username, houseworkerID, date: today().text },
    notificationObj: { ...adapted.notificationObj, from: panel.userID, to: houseworkerID } };
}

function rating(example, panel) {
  const houseworkerID = houseworkerOf(panel);
  const houseworker = usernameOf(houseworkerID);
  const adapted = renamed(example, { [example.client]: panel.username, [example.houseworker]: houseworker });
  return { ...adapted, client: panel.username, houseworker, houseworkerID,
    notification: { ...adapted.notification, from: panel.userID, to: houseworkerID } };
}

function message(example, panel) {
  const data = example.data;
  const roomID = roomFor(panel.userID);
  const unread = data.unreadMessArray[0];
  return { ...example, data: {
    ...renamed(data, { [data.fromUsername]: panel.username }),
    from: panel.userID, fromUsername: panel.username, roomID, roomKey: `room:${roomID}`,
    unreadMessArray: othersIn(roomID, panel.userID).map((id) => ({ ...unread, recipientID: id, roomID })),
  } };
}

function typing(example, panel) {
  return { ...example, roomID: roomFor(panel.userID),
           user: { ...example.user, userID: panel.userID, username: panel.username } };
}

const KNOWN = [
  { group: "Presence", name: ADD_ONLINE_USER,
    adapt: (example, panel) => ({ ...example, userID: panel.userID, userUsername: panel.username }) },
  { group: "Presence", name: JOIN_ROOM, adapt: (example, panel) => panel.userID },
  { group: "Presence", name: "leaveRoom", adapt: (example, panel) => panel.userID },
  { group: "Chat rooms", name: "chatRoom.join", adapt: (example, panel) => roomFor(panel.userID) },
  { group: "Chat rooms", name: "chatRoom.leave", adapt: (example, panel) => roomFor(panel.userID) },
  { group: "Messaging", name: "message", adapt: message },
  { group: "Typing", name: "startTypingRoom", adapt: typing },
  { group: "Typing", name: "stopTypingRoom", adapt: typing },
  { group: "Groups", name: "createUserGroup", adapt: newMember },
  { group: "Groups", name: "addUserToGroup", adapt: newMember },
  { group: "Groups", name: "kickUserFromGroup", adapt: kick },
  { group: "Groups", name: "deleteUserRoom", adapt: (example, panel) => {
      const roomID = groupFor(panel.userID);
      const names = { [example.clientUsername]: panel.username };
      return { ...renamed(example, names), roomID, clientID: panel.userID, clientUsername: panel.username,
               notifications: addressed(example.notifications, othersIn(roomID, panel.userID),
                                        {}, panel, names) };
    } },
  { group: "Notifications", name: "commentNotification", adapt: comment },
  { group: "Notifications", name: "ratingNotification", adapt: rating },
];

/* Every event the examples have, in the page's order; one the page does not know is offered
 * as its example, unchanged. */
export const CLIENT_EVENTS = [
  ...KNOWN.filter((event) => event.name in EXAMPLES),
  ...Object.keys(EXAMPLES).filter((name) => !KNOWN.some((event) => event.name === name))
    .map((name) => ({ group: "Other", name, adapt: (example) => example })),
];

const BY_NAME = new Map(CLIENT_EVENTS.map((event) => [event.name, event]));

/** The example of event `name`, adapted to the panel's user and the scenario. */
export function defaultPayload(panel, name) {
  return dated(BY_NAME.get(name).adapt(structuredClone(EXAMPLES[name]), panel), today());
}
