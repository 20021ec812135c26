/* The timeline: a sequence diagram (SVG) of what each panel sent and received.
 *
 * Lanes: the server first, then one per panel in page order; time runs down. Every row is
 * one arrow: an event a panel sent, from its lane into the server's, or an event a panel
 * received, from the server's lane into the panel's. A refused event gets a red cross on its
 * sender's lane. Only the last LIMIT rows are kept. Each row carries data-kind, data-from,
 * data-to and data-event, so that who got what can be read from the DOM as from the picture.
 */
import { inline } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const LIMIT = 80;
export const SERVER = "server";
const ROW = 24;
const HEAD = 44;
// narrow enough that a phone's width holds the server and four panels without scrolling
const LANE_MIN = 64;
const PAD = 12;
// widths of a character of the labels, in px (11 px monospace, 12 px semibold), to keep them inside
const CHAR = 6.7;
const LANE_CHAR = 7.4;
const BAD = "#b42318";
const DELIVERY = "#3d4657";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

function arrow(x1, x2, y, colour, dashed) {
  const dir = Math.sign(x2 - x1) || 1;
  return [
    svg("line", { x1, y1: y, x2: x2 - dir * 6, y2: y, stroke: colour, "stroke-width": 2,
                  ...(dashed ? { "stroke-dasharray": "5 3" } : {}) }),
    svg("path", { d: `M${x2},${y} l${-dir * 9},-5 v10 z`, fill: colour }),
  ];
}

function cross(x, y) {
  return svg("g", { class: "tl-cross", stroke: BAD, "stroke-width": 3, "stroke-linecap": "round" },
    svg("line", { x1: x - 6, y1: y - 6, x2: x + 6, y2: y + 6 }),
    svg("line", { x1: x - 6, y1: y + 6, x2: x + 6, y2: y - 6 }));
}

function laneStroke(key) {
  return key === SERVER ? { "stroke-width": 4, "stroke-opacity": 0.6 }
                        : { "stroke-width": 2, "stroke-opacity": 0.35 };
}

/* x for a middle-anchored text of n characters near cx, moved so that all of it is in [0, width]. */
function inside(cx, n, width) {
  const half = (n * CHAR) / 2 + 2;
  return Math.max(half, Math.min(width - half, cx));
}

/* A lane's name in two lines that fit its width: the username (cut with … when too long), then
 * "#id" and the tab. */
function laneLines(label, laneWidth) {
  const at = label.indexOf(" #");
  const [name, rest] = at < 0 ? [label, ""] : [label.slice(0, at), label.slice(at + 1)];
  const max = Math.max(3, Math.floor((laneWidth - 6) / LANE_CHAR));
  const cut = (text) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
  return [cut(name), cut(rest)];
}

export class Timeline {
  /** head: the SVG of the lane names, which stays in view; root: the SVG of the rows. */
  constructor(head, root, count) {
    this.head = head;
    this.root = root;
    this.count = count;
    this.lanes = new Map();  // panel key -> {label, colour, gone}
    this.rows = [];
    this.total = 0;
    this.scheduled = false;
    window.addEventListener("resize", () => this.schedule());
  }

  /** Add or relabel the lane of a panel. */
  lane(key, label, colour) {
    this.lanes.set(key, { label, colour, gone: false });
    this.schedule();
  }

  /** The panel is gone: its lane stays while rows still refer to it. */
  dropLane(key) {
    const lane = this.lanes.get(key);
    if (lane) lane.gone = true;
    this.schedule();
  }

  /** A row for an event the panel sent; settle(outcome, rtt, code) it when the ack comes. */
  sent(key, event, payload) {
    const row = { kind: "send", lane: key, event, outcome: "pending", title: inline(payload) };
    this.push(row);
    return { settle: (outcome, rtt, code) => { Object.assign(row, { outcome, rtt, code }); this.schedule(); } };
  }

  /** replayed: given back by a recovering reconnect, after the panel missed it. */
  received(key, event, payload, replayed = false) {
    // a presence change says which one: every such arrow is newOnlineUser
    const presence = event === "newOnlineUser" && payload && typeof payload.type === "string"
      ? payload.type : null;
    this.push({ kind: "delivery", lane: key, event, title: inline(payload), replayed, presence,
                note: presence ? `${presence} #${payload.userID}` : null });
  }

  /** A dot on the panel's lane: its connection changed. */
  marker(key, text, bad = false) {
    this.push({ kind: "marker", lane: key, event: text, bad });
  }

  clear() {
    this.rows = [];
    this.total = 0;
    this.schedule();
  }

  push(row) {
    row.time = new Date().toLocaleTimeString([], { hour12: false });
    this.rows.push(row);
    this.total += 1;
    if (this.rows.length > LIMIT) this.rows.shift();
    this.schedule();
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => { this.scheduled = false; this.render(); });
  }

  render() {
    for (const [key, lane] of this.lanes) {
      if (lane.gone && !this.rows.some((row) => row.lane === key)) this.lanes.delete(key);
    }
    const keys = [SERVER, ...this.lanes.keys()];
    const scroller = this.root.parentElement;
    const atBottom = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 8;
    const width = Math.max(scroller.clientWidth, 2 * PAD + keys.length * LANE_MIN);
    const laneWidth = (width - 2 * PAD) / keys.length;
    const x = (key) => PAD + laneWidth * (keys.indexOf(key) + 0.5);
    const height = Math.max(this.rows.length, 1) * ROW + 8;
    for (const [node, h] of [[this.head, HEAD], [this.root, height]]) {
      node.setAttribute("width", width);
      node.setAttribute("height", h);
      node.setAttribute("viewBox", `0 0 ${width} ${h}`);
    }
    const laneOf = (key) => this.lanes.get(key) || { label: "server", colour: DELIVERY };

    this.width = width;
    this.head.replaceChildren(...keys.map((key) => {
      const lane = laneOf(key);
      const full = lane.gone ? `${lane.label} (removed)` : lane.label;
      const [first, second] = laneLines(full, laneWidth);
      return svg("g", { class: "tl-lane", "data-lane": key, "data-label": full }, svg("title", {}, full),
        svg("text", { x: x(key), y: second ? 16 : 24, "text-anchor": "middle", fill: lane.colour,
                      class: `tl-lane-label${lane.gone ? " gone" : ""}` },
            svg("tspan", {}, first),
            ...(second ? [svg("tspan", { x: x(key), dy: 14 }, second)] : [])),
        svg("line", { x1: x(key), y1: 38, x2: x(key), y2: HEAD, stroke: lane.colour, ...laneStroke(key) }));
    }));
    const nodes = keys.map((key) => svg("line", { x1: x(key), y1: 0, x2: x(key), y2: height,
                                                  stroke: laneOf(key).colour, ...laneStroke(key) }));
    if (!this.rows.length) {
      nodes.push(svg("text", { x: PAD, y: 18, class: "tl-empty" }, "Nothing sent or received yet."));
    }
    this.rows.forEach((row, index) => nodes.push(this.drawRow(row, index * ROW + 18, x)));
    this.root.replaceChildren(...nodes);

    this.count.textContent = this.total > this.rows.length
      ? `the last ${this.rows.length} of ${this.total}` : `${this.total} in all`;
    if (atBottom) scroller.scrollTop = scroller.scrollHeight;
  }

  drawRow(row, y, x) {
    const lane = this.lanes.get(row.lane);
    const at = x(row.lane);
    const title = svg("title", {}, `${row.time} ${row.event}${row.title ? ` ${row.title.slice(0, 400)}` : ""}`);
    if (row.kind === "marker") {
      // right of the dot, or left of it where the right has no room
      const right = at + 9 + row.event.length * CHAR <= this.width;
      return svg("g", { class: "tl-row", "data-kind": "marker", "data-lane": row.lane, "data-event": row.event },
        svg("circle", { cx: at, cy: y, r: 5, fill: row.bad ? BAD : lane.colour }),
        svg("text", { x: right ? at + 9 : at - 9, y: y + 4, class: "tl-label",
                      "text-anchor": right ? "start" : "end" }, row.event), title);
    }
    const sending = row.kind === "send";
    const [from, to] = sending ? [row.lane, SERVER] : [SERVER, row.lane];
    const refused = row.outcome === "refused" || row.outcome === "timeout";
    const colour = refused ? BAD : sending ? lane.colour : DELIVERY;
    let label = row.event;
    if (row.note) label += ` ${row.note}`;
    if (sending && row.outcome === "ok") label += ` · ${row.rtt} ms`;
    if (sending && refused) label += row.outcome === "timeout" ? " · no ack" : ` · refused ${row.code || ""}`;
    if (row.replayed) label += " · replayed";
    const group = svg("g", { class: "tl-row", "data-kind": row.kind, "data-from": from, "data-to": to,
                             "data-event": row.event, ...(sending ? { "data-outcome": row.outcome } : {}),
                             ...(row.replayed ? { "data-replayed": "yes" } : {}),
                             ...(row.presence ? { "data-presence": row.presence } : {}) },
      ...arrow(x(from), x(to), y, colour, sending && row.outcome === "pending"),
      svg("text", { x: inside((x(from) + x(to)) / 2, label.length, this.width), y: y - 5,
                    "text-anchor": "middle", class: "tl-label",
                    fill: refused ? BAD : "currentColor" }, label),
      title);
    if (sending && refused) {
      group.append(svg("g", { "data-kind": "refusal", "data-lane": row.lane }, cross(at, y)));
    }
    return group;
  }
}
