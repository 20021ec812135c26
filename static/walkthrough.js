/* The walk-through at the top of the page: one step at a time, or all of them at once. */
import { el } from "./dom.js";

/** Wire the steps' buttons; show(panelKey, event) brings a step's panel and event forward. */
export function setupWalkthrough(show) {
  const box = document.getElementById("walkthrough");
  const steps = [...document.querySelectorAll("#walkthrough-steps > li")];
  const prev = document.getElementById("walkthrough-prev");
  const next = document.getElementById("walkthrough-next");
  const all = document.getElementById("walkthrough-all");
  let current = 0;

  function render() {
    steps.forEach((step, index) => step.classList.toggle("current", index === current));
    document.getElementById("walkthrough-position").textContent = `step ${current + 1} of ${steps.length}`;
    prev.disabled = current === 0;
    next.disabled = current === steps.length - 1;
  }

  for (const step of steps) {
    const { showPanel, showEvent } = step.dataset;
    if (!showPanel) continue;
    const button = el("button", { type: "button", class: "show-me" },
                      showEvent ? `Show me ${showEvent}` : "Show me the panel");
    button.addEventListener("click", () => show(showPanel, showEvent));
    step.append(button);
  }
  prev.addEventListener("click", () => { current = Math.max(0, current - 1); render(); });
  next.addEventListener("click", () => { current = Math.min(steps.length - 1, current + 1); render(); });
  all.addEventListener("click", () => {
    const showAll = box.classList.toggle("show-all");
    all.setAttribute("aria-pressed", String(showAll));
  });
  render();
}
