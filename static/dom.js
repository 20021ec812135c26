/* Small DOM and formatting helpers that every module of the demo page uses. */

/** The element of `root` with data-role="role", or null. */
export function $(root, role) {
  return root.querySelector(`[data-role="${role}"]`);
}

/** A new element with attributes ("class", "dataset" and plain ones) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** JSON indented over several lines: what the composer edits and the copy buttons copy. */
export function pretty(value) {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

/** JSON on one line with a space after each comma and colon, so that the log can wrap it. */
export function inline(value) {
  if (Array.isArray(value)) return `[${value.map((item) => inline(item ?? null)).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const fields = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${fields.map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`).join(", ")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** The wall-clock time as HH:MM:SS. */
export function clock() {
  return new Date().toLocaleTimeString([], { hour12: false });
}

/** Put text on the clipboard; raises when the browser refuses. */
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // plain http to another host has no Clipboard API; a selected textarea still copies
  const area = el("textarea", { class: "offscreen", readonly: "" });
  area.value = text;
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("the browser refused to copy");
}

/** A "Copy" button that copies text() and says whether that worked. */
export function copyButton(text, label = "Copy") {
  const button = el("button", { type: "button", class: "copy", title: "Copy to the clipboard" }, label);
  attachCopy(button, text, label);
  return button;
}

/** Make an existing button copy text() when pressed. */
export function attachCopy(button, text, label = button.textContent) {
  button.addEventListener("click", async () => {
    try {
      await copyText(text());
      button.textContent = "Copied";
      button.dataset.copied = "yes";
    } catch (error) {
      button.textContent = "Copy failed";
      button.title = String(error);
    }
    setTimeout(() => { button.textContent = label; delete button.dataset.copied; }, 1500);
  });
}
