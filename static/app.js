/* The demo page: several users at once, one Socket.IO connection each.
 *
 * Modules: scenario.js (who is on the page, room ids), payloads.js (the examples adapted to a
 * panel), panel.js (a user's connection, composer and log, with log.js), timeline.js (the
 * sequence diagram under the panels), walkthrough.js (the steps at the top).
 */
import { el } from "./dom.js";
import { Panel } from "./panel.js";
import { freshUserID, membersOf, newcomerFor, panels, roster, scenario, scenarioGroup, scenarioRoom }
  from "./scenario.js";
import { Timeline } from "./timeline.js";
import { keepInBox, setupWalkthrough } from "./walkthrough.js";

const DEFAULT_USERS = [
  { userID: "1", username: "john_doe" },
  { userID: "2", username: "jane" },
  { userID: "3", username: "sara_cleaner" },
];

const page = {
  timeline: new Timeline(document.getElementById("timeline-lanes"), document.getElementById("timeline"),
                         document.getElementById("timeline-count")),
  autoIdentify: () => document.getElementById("auto-identify").checked,
  onRemove: () => refreshScenario(),
};

/* Redraw the scenario box from the users on the page, then every panel from the scenario. */
function refreshScenario() {
  const users = roster();
  const ids = users.map((u) => u.userID);
  if (scenario.roomMembers === null) scenario.roomMembers = new Set(ids.slice(0, 2));
  for (const id of [...scenario.roomMembers]) if (!ids.includes(id)) scenario.roomMembers.delete(id);
  const room = scenarioRoom();
  // the boxes show the room actually used, fallback members included
  scenario.roomMembers = new Set(membersOf(room).filter((id) => ids.includes(id)));

  const box = document.getElementById("scenario-room");
  box.querySelectorAll("label").forEach((node) => node.remove());
  for (const user of users) {
    const input = el("input", { type: "checkbox", dataset: { user: user.userID } });
    input.checked = membersOf(room).includes(user.userID);
    // a room has at least two members: the last two stay checked until a third is
    input.disabled = input.checked && scenario.roomMembers.size <= 2;
    input.title = input.disabled ? "A room needs two members: check another one first." : "";
    input.addEventListener("change", () => {
      if (input.checked) scenario.roomMembers.add(user.userID);
      else scenario.roomMembers.delete(user.userID);
      refreshScenario();
    });
    box.append(el("label", { class: "check" }, input, ` ${user.username} #${user.userID}`));
  }

  const select = document.getElementById("scenario-newcomer");
  const outside = users.filter((u) => !membersOf(room).includes(u.userID));
  if (!outside.some((u) => u.userID === scenario.newcomer)) {
    scenario.newcomer = outside.length ? outside[0].userID : null;
  }
  select.replaceChildren(...outside.map((u) => el("option", { value: u.userID },
                                                  `${u.username} #${u.userID}`)));
  if (!outside.length) select.append(el("option", { value: "" }, `user #${newcomerFor(room)} (no panel)`));
  select.value = scenario.newcomer || "";

  document.getElementById("scenario-room-id").textContent = room;
  document.getElementById("scenario-group-id").textContent = scenarioGroup();
  for (const panel of panels) panel.refresh();
}

function addPanel(userID, username) {
  const panel = new Panel(userID, username, page);
  refreshScenario();
  panel.connect();
  return panel;
}

function suggestNextUser() {
  const form = document.getElementById("add-panel-form");
  const next = freshUserID(roster().map((u) => u.userID));
  form.userID.value = next;
  form.username.value = `user${next}`;
}

/* A walk-through step's "Show me": pick its event in each of its panels, and bring the first one's
 * composer into view under the walk-through, which stays on screen (it is sticky). */
function showStep(keys, event, step) {
  const chosen = keys.map((key) => panels.find((p) => p.key === key)).filter(Boolean);
  if (!chosen.length) return;
  if (event) chosen.forEach((panel) => panel.choose(event));
  const row = document.getElementById("panels");
  const first = chosen[0].root;
  // sideways, when it is not wholly in view: its start to the row's start
  const [rowBox, box] = [row.getBoundingClientRect(), first.getBoundingClientRect()];
  if (box.left < rowBox.left || box.right > rowBox.right) row.scrollLeft += box.left - rowBox.left;
  // down: its composer, the payload and Send, under the sticky walk-through (scroll-margin-top
  // in app.css); instant, so that what a person (or a test) sees next is where it ends
  first.querySelector(".composer").scrollIntoView({ behavior: "instant", block: "nearest" });
  keepInBox(step);
  first.querySelector('[data-role="send"]').focus({ preventScroll: true });
}

function start() {
  document.getElementById("server-origin").textContent = window.location.origin;
  if (typeof io === "undefined") document.getElementById("missing-client").hidden = false;

  document.getElementById("scenario-newcomer").addEventListener("change", (event) => {
    scenario.newcomer = event.target.value || null;
    refreshScenario();
  });
  document.getElementById("clear-logs").addEventListener("click", () => {
    for (const panel of panels) panel.log.clear();
  });
  document.getElementById("timeline-clear").addEventListener("click", () => page.timeline.clear());
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
  setupWalkthrough(showStep);

  const created = DEFAULT_USERS.map((user) => new Panel(user.userID, user.username, page));
  refreshScenario();
  created.forEach((panel) => panel.connect());
  suggestNextUser();
}

start();
