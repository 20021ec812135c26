/* The walk-through at the top of the page: one step at a time, or all of them at once. */
import { el } from "./dom.js";

/** Wire the steps' buttons; show(panelKeys, event, step) picks the event in each of the step's
 * panels and brings them forward, the step kept in view. */
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
    const keys = showPanel.split(/\s+/);
    const where = keys.length > 1 ? " in each panel" : "";
    const button = el("button", { type: "button", class: "show-me" },
                      showEvent ? `Show me ${showEvent}${where}` : "Show me the panel");
    button.addEventListener("click", () => show(keys, showEvent, step));
    step.append(button);
  }
  prev.addEventListener("click", () => { current = Math.max(0, current - 1); render(); });
  next.addEventListener("click", () => { current = Math.min(steps.length - 1, current + 1); render(); });
  all.addEventListener("click", () => {
    const showAll = box.classList.toggle("show-all");
    all.setAttribute("aria-pressed", String(showAll));
  });
  // the box stays at the top of the screen (sticky): what scrolls into view goes below it
  new ResizeObserver(() => document.documentElement.style.setProperty(
    "--walkthrough-height", `${box.getBoundingClientRect().height}px`)).observe(box);
  render();
}

/** Scroll the box itself, when it scrolls (All steps), so that the step is in it. */
export function keepInBox(step) {
  const box = document.getElementById("walkthrough");
  const inner = box.getBoundingClientRect(), rect = step.getBoundingClientRect();
  if (rect.top < inner.top) box.scrollTop -= inner.top - rect.top;
  else if (rect.bottom > inner.bottom) box.scrollTop += Math.min(rect.bottom - inner.bottom, rect.top - inner.top);
}
