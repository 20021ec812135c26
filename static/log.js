/* A panel's log, newest first: what it sent (with the ack and its round trip), what it
 * received, and what happened to its connection; a filter box hides what does not match. */
import { clock, copyButton, el, inline, pretty } from "./dom.js";

const LIMIT = 200;
let seq = 0;  // orders entries across every panel's log

export class Log {
  constructor(list, filter) {
    this.list = list;
    this.filter = filter;
    filter.addEventListener("input", () => { for (const entry of list.children) this.match(entry); });
  }

  /** Log an event the server sent to this panel; `replayed`: missed while it was away, and
   * given back by a recovering reconnect. */
  received(name, payload, isError, replayed = false) {
    const entry = this.add("event", "received", name, payload, isError);
    if (replayed) {
      entry.dataset.replayed = "yes";
      entry.querySelector(".entry-kind").after(el("span", { class: "entry-tag" }, "replayed"));
      this.match(entry);
    }
    return entry;
  }

  /** Log a change of the connection (connect, disconnect, connect_error). */
  lifecycle(name, detail, isError = false) {
    return this.add("lifecycle", "connection", name, detail, isError);
  }

  /** Log an event this panel sent; the entry it returns takes the ack when it comes. */
  sent(name, payload) {
    return new SentEntry(this, this.add("sent", "sent", name, payload, false));
  }

  clear() {
    this.list.replaceChildren();
  }

  add(kind, label, name, payload, isError) {
    seq += 1;
    const head = el("div", { class: "entry-head" },
      el("span", { class: "entry-kind" }, label),
      el("span", { class: "entry-name" }, name),
      el("time", {}, clock()));
    const entry = el("li", { class: `entry ${kind}${isError ? " error" : ""}`,
                             dataset: { kind, name, seq: String(seq) } }, head);
    if (payload !== undefined) {
      head.append(copyButton(() => pretty(payload)));
      // one wrapped line, never a box of its own to scroll: nothing of a payload is hidden
      entry.append(el("pre", { class: "entry-payload" }, inline(payload)));
    }
    this.list.prepend(entry);
    while (this.list.children.length > LIMIT) this.list.lastElementChild.remove();
    this.match(entry);
    return entry;
  }

  /** Hide the entry unless its kind, name, payload or ack contains the filter's text. */
  match(entry) {
    const term = this.filter.value.trim().toLowerCase();
    const text = [...entry.querySelectorAll(".entry-kind, .entry-tag, .entry-name, pre, .ack-label")]
      .map((node) => node.textContent).join(" ").toLowerCase();
    entry.hidden = term !== "" && !text.includes(term);
  }
}

/* A sent event's entry: its payload, then its ack with the round trip in milliseconds. A
 * refusal, which the server sends both as the ack and as an `error` event, is shown here once. */
class SentEntry {
  constructor(log, entry) {
    this.log = log;
    this.entry = entry;
    this.ack = el("div", { class: "entry-ack" }, el("span", { class: "ack-label" }, "waiting for the ack…"));
    entry.dataset.ack = "pending";
    entry.append(this.ack);
  }

  acked(response, rtt) {
    const refused = !response || response.ok !== true;
    this.entry.dataset.ack = refused ? "refused" : "ok";
    this.entry.dataset.rtt = String(rtt);
    this.entry.classList.toggle("error", refused);
    const label = refused ? `refused${response && response.code ? ` ${response.code}` : ""} · ack in ${rtt} ms`
                          : `ack in ${rtt} ms`;
    this.ack.replaceChildren(el("span", { class: "ack-label" }, label), copyButton(() => pretty(response)),
                             el("pre", { class: "ack-payload" }, inline(response)));
    this.log.match(this.entry);
  }

  timedOut(ms) {
    this.entry.dataset.ack = "timeout";
    this.entry.classList.add("error");
    this.ack.replaceChildren(el("span", { class: "ack-label" }, `no ack within ${ms / 1000} s`));
    this.log.match(this.entry);
  }

  /** The server's `error` event for this send arrived: say so instead of logging it again. */
  alsoErrorEvent() {
    this.entry.dataset.errorEvent = "received";
    this.entry.append(el("p", { class: "entry-note" }, "The server also sent this refusal as an ",
                         el("code", {}, "error"), " event."));
  }
}
