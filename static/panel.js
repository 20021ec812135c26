/* One panel: one user's Socket.IO connection, its online list, its composer and its log. */
import { $, attachCopy, el, pretty } from "./dom.js";
import { Log } from "./log.js";
import { ADD_ONLINE_USER, CLIENT_EVENTS, JOIN_ROOM, defaultPayload } from "./payloads.js";
import { panels, sortIds, usernameOf } from "./scenario.js";

const AUTH_MODE = document.body.dataset.authMode || "open";
const SESSION_COOKIE = document.body.dataset.sessionCookie || "sessionLog";
const ACK_TIMEOUT_MS = 5000;
const ERROR_EVENT = "error";
const PRESENCE_EVENT = "newOnlineUser";
const REFUSALS_KEPT = 20;
// a dropped panel's client waits this long before it reconnects: time to send it something
// meanwhile, yet under the server's default presence grace (5 s), so that its user stays online
const DROP_RECONNECT_MS = 3000;
// far apart in hue, so that two tabs of one user never look alike
const COLOURS = ["#2457c5", "#c2410c", "#15803d", "#9333ea", "#0e7490", "#be185d", "#a16207", "#4d7c0f"];

/* The lowest tab number that user has free: 1 for a user's first panel. */
function freeTab(userID) {
  const used = new Set(panels.filter((p) => p.userID === userID).map((p) => p.tab));
  let tab = 1;
  while (used.has(tab)) tab += 1;
  return tab;
}

function freeColour() {
  const used = new Set(panels.map((p) => p.colour));
  return COLOURS.find((colour) => !used.has(colour)) || COLOURS[panels.length % COLOURS.length];
}

/* How to get a proof of userID on the server: the development helper, tools/token.py. */
function tokenCommand(userID, username) {
  const name = /^[\w.@-]+$/.test(username) ? username : `'${username.replace(/'/g, "'\\''")}'`;
  return `python -m tools.token ${userID} --username ${name}`;
}

/* A refused event's ack and its `error` event are the same object. */
function refusalKey(error) {
  return `${error.event}|${error.timestamp}`;
}

export class Panel {
  /** page: {timeline, autoIdentify(), onRemove(panel)}. */
  constructor(userID, username, page) {
    this.userID = userID;
    this.username = username;
    this.page = page;
    this.tab = freeTab(userID);
    this.key = this.tab === 1 ? userID : `${userID}-${this.tab}`;
    this.colour = freeColour();
    this.socket = null;
    this.online = new Set();
    this.onlineBuffer = null;   // newOnlineUser changes that arrive while the list is being fetched
    this.event = ADD_ONLINE_USER;
    this.drafts = new Map();    // event -> the payload text as the person edited it
    this.pending = [];          // sends waiting for their ack
    this.refusals = new Map();  // refused acks whose `error` event has not arrived yet
    this.unreachable = false;
    this.attempt = 0;

    const root = document.getElementById("panel-template").content.firstElementChild.cloneNode(true);
    this.root = root;
    root.dataset.panel = this.key;
    root.dataset.user = userID;
    root.style.setProperty("--panel-colour", this.colour);
    $(root, "username").textContent = username;
    $(root, "user-id").textContent = userID;
    $(root, "server-url").value = window.location.origin;
    if (AUTH_MODE !== "jwt") $(root, "token-label").remove();
    this.log = new Log($(root, "log"), $(root, "filter"));
    this.buildComposer();

    $(root, "connect").addEventListener("click", () => this.connect());
    $(root, "disconnect").addEventListener("click", () => this.disconnect());
    $(root, "drop").addEventListener("click", () => this.drop());
    $(root, "remove").addEventListener("click", () => this.remove());
    $(root, "clear-log").addEventListener("click", () => this.log.clear());
    panels.push(this);
    document.getElementById("panels").append(root);
  }

  /** "jane #2", or "jane #2 · tab 2" while the user has more than one panel. */
  label() {
    const tabs = panels.filter((p) => p.userID === this.userID).length;
    return `${this.username} #${this.userID}${tabs > 1 ? ` · tab ${this.tab}` : ""}`;
  }

  /** Bring the tab label, the default payload (unless edited) and the online list up to date. */
  refresh() {
    const tabs = panels.filter((p) => p.userID === this.userID).length;
    $(this.root, "tab").textContent = tabs > 1 ? ` · tab ${this.tab}` : "";
    this.page.timeline.lane(this.key, this.label(), this.colour);
    this.choose(this.event);
    this.renderOnline();
  }

  /* ---------- the composer ---------- */

  buildComposer() {
    const buttons = $(this.root, "events");
    let group = null, list = null;
    for (const event of CLIENT_EVENTS) {
      if (event.group !== group) {
        group = event.group;
        list = el("div", { class: "event-list" });
        buttons.append(el("div", { class: "event-group" },
                          el("span", { class: "event-group-name" }, group), list));
      }
      const button = el("button", { type: "button", class: "event-btn", dataset: { event: event.name } },
                        event.name);
      button.addEventListener("click", () => this.choose(event.name));
      list.append(button);
    }
    const payload = $(this.root, "payload");
    payload.addEventListener("input", () => {
      this.drafts.set(this.event, payload.value);
      $(this.root, "edited").hidden = false;
    });
    $(this.root, "send").addEventListener("click", () => this.send());
    $(this.root, "reset").addEventListener("click", () => {
      this.drafts.delete(this.event);
      this.choose(this.event);
    });
    attachCopy($(this.root, "copy-payload"), () => payload.value);
  }

  /** Select an event: its edited payload if there is one, else its default. */
  choose(name) {
    this.event = name;
    for (const button of this.root.querySelectorAll(".event-btn")) {
      button.setAttribute("aria-pressed", String(button.dataset.event === name));
    }
    $(this.root, "chosen-event").textContent = name;
    const draft = this.drafts.get(name);
    $(this.root, "payload").value = draft !== undefined ? draft : pretty(defaultPayload(this, name));
    $(this.root, "edited").hidden = draft === undefined;
    this.root.dataset.chosenEvent = name;
  }

  note(text) {
    const node = $(this.root, "note");
    node.textContent = text;
    node.hidden = !text;
  }

  send() {
    // an unedited payload is made again, so that its dates are those of the send
    if (!this.drafts.has(this.event)) this.choose(this.event);
    let payload;
    try {
      payload = JSON.parse($(this.root, "payload").value);
    } catch (error) {
      this.note(`Not sent: the payload is not valid JSON (${error.message}).`);
      return;
    }
    if (!this.socket || !this.socket.connected) {
      this.note("Not sent: this panel is not connected.");
      return;
    }
    this.note("");
    this.emit(this.event, payload);
  }

  /** Send with an acknowledgement; the log and the timeline show it, then its ack and round trip. */
  emit(event, payload) {
    const sending = { event, entry: this.log.sent(event, payload),
                      row: this.page.timeline.sent(this.key, event, payload), errorEvent: false };
    this.pending.push(sending);
    const started = performance.now();
    this.socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (timeout, response) => {
      this.pending = this.pending.filter((p) => p !== sending);
      const rtt = Math.round(performance.now() - started);
      if (timeout) {
        sending.entry.timedOut(ACK_TIMEOUT_MS);
        sending.row.settle("timeout", rtt);
        return;
      }
      const refused = !response || response.ok !== true;
      sending.entry.acked(response, rtt);
      sending.row.settle(refused ? "refused" : "ok", rtt, response && response.code);
      if (refused && response && !sending.errorEvent) this.awaitErrorEvent(response, sending);
    });
  }

  awaitErrorEvent(response, sending) {
    this.refusals.set(refusalKey(response), sending);
    if (this.refusals.size > REFUSALS_KEPT) this.refusals.delete(this.refusals.keys().next().value);
  }

  /* The server sends a refusal twice: as the ack and as an `error` event, usually first. Both
   * belong to the one sent entry. Returns whether the error was one of this panel's sends. */
  groupRefusal(error) {
    if (!error || typeof error.event !== "string") return false;
    let sending = this.pending.find((p) => p.event === error.event && !p.errorEvent);
    if (!sending) {
      sending = this.refusals.get(refusalKey(error));
      this.refusals.delete(refusalKey(error));
    }
    if (!sending) return false;
    sending.errorEvent = true;
    sending.entry.alsoErrorEvent();
    return true;
  }

  /* ---------- the online list ---------- */

  renderOnline() {
    const list = $(this.root, "online");
    const ids = sortIds(this.online);
    list.replaceChildren(...ids.map((id) => el("li", { class: "chip", dataset: { user: id } },
                                                `${usernameOf(id)} #${id}`)));
    if (!ids.length) list.append(el("li", { class: "empty" }, this.nobodyOnline()));
  }

  /* An empty list says why: nobody is online, or the panel cannot know while it is not connected. */
  nobodyOnline() {
    const socket = this.socket;
    if (socket && socket.connected) return "nobody";
    if (socket && socket.active) return this.wasConnected ? "reconnecting…" : "connecting…";
    return "not connected";
  }

  applyPresence(change) {
    if (this.onlineBuffer) { this.onlineBuffer.push(change); return; }
    if (change.type === "Add") this.online.add(String(change.userID));
    if (change.type === "Remove") this.online.delete(String(change.userID));
    this.renderOnline();
  }

  /** Seed from the REST list, then replay what newOnlineUser said meanwhile, in order. */
  async seedOnline() {
    this.onlineBuffer = [];
    try {
      // the page's own origin: in a Redis deployment every process reports the same set.
      // In jwt mode the list asks for the panel's token, as the socket does (session mode: the cookie).
      const headers = {};
      if (AUTH_MODE === "jwt") headers.Authorization = `Bearer ${this.token()}`;
      const response = await fetch("/api/online-users", { cache: "no-store", headers });
      const body = await response.json();
      if (!response.ok) throw new Error(`${response.status} ${body.code}: ${body.error}`);
      this.online = new Set(body.map(String));
    } catch (error) {
      this.log.lifecycle("online-users", { error: String(error) }, true);
    }
    const buffered = this.onlineBuffer;
    this.onlineBuffer = null;
    for (const change of buffered) this.applyPresence(change);
    this.renderOnline();
  }

  /* ---------- the connection ---------- */

  token() {
    const field = $(this.root, "token");
    return field ? field.value.trim() : "";
  }

  /** Say under the panel's header how to get the proof its user needs; null hides it. */
  proofHelp(lead) {
    const help = $(this.root, "proof-help");
    help.hidden = lead === null;
    if (lead === null) return;
    const command = el("code", { class: "command" }, tokenCommand(this.userID, this.username));
    help.replaceChildren(lead, " ");
    if (AUTH_MODE === "jwt") {
      help.append("Get a token for this user: run ", command, " where the server runs (with its "
                  + "settings), paste what it prints above and press Connect.");
    } else {
      help.append(`In session mode the server reads the ${SESSION_COOKIE} cookie this browser holds for `
                  + "this site, the same for every panel. Without the REST API: run ", command,
                  " where the server runs, set the cookie it prints in this page's console, and "
                  + "press Connect.");
    }
  }

  setStatus(state, text) {
    const node = $(this.root, "status");
    node.dataset.state = state;
    node.textContent = text;
    $(this.root, "sid").textContent = this.socket && this.socket.id ? `sid ${this.socket.id}` : "";
  }

  /** Connecting, connected, unreachable (the client retries by itself) or refused (it does not). */
  connect() {
    if (typeof io === "undefined") return;
    this.disconnect();
    if (AUTH_MODE === "jwt" && !this.token()) {  // sent empty, the server could only say "malformed"
      this.setStatus("no-token", "no token");
      this.proofHelp("No token yet: this server runs in jwt mode, where a panel connects only with a "
                     + "token of its user.");
      return;
    }
    this.proofHelp(null);
    const options = {
      query: { userID: this.userID },
      forceNew: true,  // one connection per panel, never a shared one
      transports: ["websocket", "polling"],
      reconnectionDelayMax: 3000,  // a restarted server is found again within seconds
    };
    if (AUTH_MODE === "jwt") options.auth = { token: this.token() };
    const socket = io($(this.root, "server-url").value || window.location.origin, options);
    this.socket = socket;
    this.wasConnected = false;
    this.unreachable = false;
    this.attempt = 0;
    this.setStatus("connecting", "connecting…");
    this.renderOnline();
    this.showRecovery(null);
    const mine = (handler) => (...args) => { if (this.socket === socket) handler(...args); };
    let reconnecting = false;  // from a disconnect to the next connect: what arrives then is a replay

    socket.on("connect", mine(() => {
      this.wasConnected = true;
      this.unreachable = false;
      this.attempt = 0;
      this.setStatus("connected", "connected");
      // socket.recovered: the server gave the socket back its id, rooms and missed events
      const recovered = Boolean(socket.recovered);
      if (reconnecting) this.showRecovery(recovered);
      reconnecting = false;
      this.log.lifecycle("connect", { sid: socket.id, recovered });
      this.page.timeline.marker(this.key, "connected");
      this.seedOnline();
      if (this.page.autoIdentify()) {
        this.emit(ADD_ONLINE_USER, defaultPayload(this, ADD_ONLINE_USER));
        this.emit(JOIN_ROOM, defaultPayload(this, JOIN_ROOM));
      }
    }));
    socket.on("disconnect", mine((reason) => {
      reconnecting = true;
      this.online.clear();  // stale until the next connect seeds it again
      this.renderOnline();
      if (socket.active) this.setStatus("connecting", "reconnecting…");
      else if (reason === "io client disconnect") this.setStatus("disconnected", "disconnected");
      else this.setStatus("disconnected", `disconnected: ${reason}`);
      this.log.lifecycle("disconnect", { reason });
      this.page.timeline.marker(this.key, "disconnected");
    }));
    socket.on("connect_error", mine((error) => {
      if (!socket.active) {  // the server answered and said no: the client will not retry
        this.setStatus("refused", `refused: ${error.message}`);
        if (AUTH_MODE !== "open") this.proofHelp(`Refused: ${error.message}.`);
        this.log.lifecycle("connect_error", { message: error.message, data: error.data }, true);
        this.page.timeline.marker(this.key, "refused", true);
        return;
      }
      if (!this.unreachable) {  // one entry per outage, not one per retry
        this.log.lifecycle("connect_error", { message: error.message, retrying: true }, true);
        this.page.timeline.marker(this.key, "unreachable", true);
      }
      this.unreachable = true;
      this.showUnreachable();
    }));
    // every server event has one argument; with connection recovery on, an offset follows it.
    // socket.io-client hands over a recovering reconnect's missed events just before `connect`.
    socket.onAny(mine((event, payload) => this.receive(event, payload, reconnecting)));
    socket.io.on("reconnect_attempt", mine((attempt) => {
      this.attempt = attempt;
      if (this.unreachable) this.showUnreachable();
    }));
  }

  receive(event, payload, replayed) {
    if (event === ERROR_EVENT && this.groupRefusal(payload)) return;
    this.log.received(event, payload, event === ERROR_EVENT, replayed);
    this.page.timeline.received(this.key, event, payload, replayed);
    if (event === PRESENCE_EVENT && payload) this.applyPresence(payload);
  }

  /** Whether the last reconnect recovered its session; null hides it (a first connect). */
  showRecovery(recovered) {
    const tag = $(this.root, "recovery");
    tag.hidden = recovered === null;
    if (recovered === null) return;
    tag.dataset.recovered = String(recovered);
    tag.textContent = recovered ? "recovered" : "new session";
    tag.title = recovered
      ? "socket.recovered: the same socket id, its rooms, and the events it missed, marked replayed"
      : "A new socket id, and nothing missed was replayed: recovery is off, its window had passed, "
        + "or the client came back before the server noticed the drop";
  }

  /** Cut the websocket as a lost network does, without a Socket.IO disconnect: the server sees
   * a transport close and, with recovery on, keeps the session; the client reconnects by itself. */
  drop() {
    const socket = this.socket;
    if (!socket || !socket.connected) {
      this.note("Not dropped: this panel is not connected.");
      return;
    }
    const manager = socket.io;
    // closing a long-polling transport sends a close packet: the server would take it for a goodbye
    if (manager.engine.transport.name !== "websocket") {
      this.note("Not dropped: this panel is on long-polling, where closing says goodbye.");
      return;
    }
    this.note("");
    this.log.lifecycle("drop", { transport: "websocket", reconnectIn: `${DROP_RECONNECT_MS / 1000} s` });
    const [delay, delayMax, jitter] = [manager.reconnectionDelay(), manager.reconnectionDelayMax(),
                                       manager.randomizationFactor()];
    manager.reconnectionDelay(DROP_RECONNECT_MS);
    manager.reconnectionDelayMax(Math.max(delayMax, DROP_RECONNECT_MS));
    manager.randomizationFactor(0);
    manager.once("reconnect_attempt", () => {  // later retries, if any, as before
      manager.reconnectionDelay(delay);
      manager.reconnectionDelayMax(delayMax);
      manager.randomizationFactor(jitter);
    });
    manager.engine.close();
  }

  showUnreachable() {
    this.setStatus("unreachable", `unreachable (retrying${this.attempt ? `, attempt ${this.attempt}` : ""})`);
  }

  disconnect() {
    if (!this.socket) return;
    const socket = this.socket;
    socket.disconnect();  // its disconnect handler logs this while it is still the panel's socket
    this.socket = null;
    this.online.clear();
    this.renderOnline();
    this.setStatus("disconnected", "disconnected");
  }

  remove() {
    this.disconnect();
    this.root.remove();
    panels.splice(panels.indexOf(this), 1);
    this.page.timeline.dropLane(this.key);
    this.page.onRemove(this);
  }
}
