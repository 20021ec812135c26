/* Who is on the page, and the rooms the default payloads are built from.
 *
 * A room id is its members' user ids sorted numerically and joined by ":"; the server
 * reads a room's members from its id alone, so the page only has to build ids right.
 */

/** The panels in page order; panel.js adds and removes them. */
export const panels = [];

/** What the scenario box chose: the chat room's members and the newcomer to the group. */
export const scenario = {
  roomMembers: null,   // Set of user ids; null until the first refresh picks the first two users
  newcomer: null,      // a user id outside the room, or null for the first one there is
};

function compareIds(a, b) {
  // user ids have up to 20 digits, more than a Number holds exactly
  const x = BigInt(a), y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function sortIds(ids) {
  return [...ids].sort(compareIds);
}

export function canonical(ids) {
  return sortIds(new Set(ids)).join(":");
}

export function membersOf(roomID) {
  return roomID.split(":");
}

export function othersIn(roomID, userID) {
  return membersOf(roomID).filter((id) => id !== userID);
}

/** The distinct users of the panels, {userID, username}, in page order. */
export function roster() {
  const seen = new Map();
  for (const panel of panels) if (!seen.has(panel.userID)) seen.set(panel.userID, panel.username);
  return [...seen].map(([userID, username]) => ({ userID, username }));
}

export function usernameOf(userID) {
  const user = roster().find((u) => u.userID === userID);
  return user ? user.username : `user${userID}`;
}

/** One more than the largest of the ids: a user no panel has. */
export function freshUserID(taken) {
  let max = 0n;
  for (const id of taken) if (BigInt(id) > max) max = BigInt(id);
  return String(max + 1n);
}

/** The chat room: the checked users, topped up to two members when fewer are checked. */
export function scenarioRoom() {
  const ids = roster().map((u) => u.userID);
  const chosen = ids.filter((id) => scenario.roomMembers && scenario.roomMembers.has(id));
  if (chosen.length >= 2) return canonical(chosen);
  const fallback = chosen.concat(ids.filter((id) => !chosen.includes(id))).slice(0, 2);
  return fallback.length >= 2 ? canonical(fallback) : canonical([...fallback, freshUserID(fallback)]);
}

/** Who joins roomID to make the group: the chosen newcomer, else the first user outside it. */
export function newcomerFor(roomID) {
  const members = membersOf(roomID);
  if (scenario.newcomer && !members.includes(scenario.newcomer)) return scenario.newcomer;
  const outside = roster().find((u) => !members.includes(u.userID));
  return outside ? outside.userID : freshUserID(members);
}

export function scenarioGroup() {
  const room = scenarioRoom();
  return canonical([...membersOf(room), newcomerFor(room)]);
}

/** The room a panel's room events use: the scenario room if its user is a member, else the group. */
export function roomFor(userID) {
  const room = scenarioRoom();
  if (membersOf(room).includes(userID)) return room;
  const group = scenarioGroup();
  if (membersOf(group).includes(userID)) return group;
  const other = roster().find((u) => u.userID !== userID);
  return canonical([userID, other ? other.userID : freshUserID([userID])]);
}

/** A group (three or more members) the user is in: its room, or its room plus the newcomer. */
export function groupFor(userID) {
  const room = roomFor(userID);
  if (membersOf(room).length >= 3) return room;
  return canonical([...membersOf(room), newcomerFor(room)]);
}
