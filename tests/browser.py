"""Debian's headless Chromium under Playwright, and the demo page as a person drives it."""
import contextlib
import json
import os
import time
from pathlib import Path

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:  # chromium() reports it, with how to install it
    PlaywrightTimeout = sync_playwright = None

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SOCKET_IO_CLIENT = ROOT / "static" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
ARTIFACTS = ROOT / "test-artifacts"
SETTLE = 0.3  # seconds to wait for stray deliveries after the expected ones arrived
TIMEOUT_MS = 5000


def _missing():
    """What the browser tests need and this machine lacks, each with how to install it."""
    missing = []
    if sync_playwright is None:
        missing.append("the Python package playwright (pip install -r requirements-test.txt)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not SOCKET_IO_CLIENT.is_file():
        missing.append(f"{SOCKET_IO_CLIENT.relative_to(ROOT)} (npm ci --prefix static)")
    return missing


def ok(ack):
    """Assert that an event the page sent was accepted."""
    assert ack == {"ok": True}, ack


@contextlib.contextmanager
def chromium():
    """Debian's Chromium under Playwright; fails when missing in CI, skips with the reason elsewhere."""
    missing = _missing()
    if missing:
        reason = "demo page browser tests need " + "; ".join(missing)
        if "CI" in os.environ:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason + " (skipped because CI is unset; in CI this fails)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def ready(browser, server, viewport=None, **context):
    """The demo page with its three default panels connected and online, and john_doe and
    jane in their chat room 1:2; context: Playwright's browser-context options."""
    demo = DemoPage(browser.new_context(viewport=viewport, **context).new_page(), server.url)
    demo.wait_connected("1", "2", "3")
    for key in "123":
        demo.wait_online(key, ["1", "2", "3"])
    for key in "12":
        ack = demo.send(key, "chatRoom.join")
        assert ack == {"ok": True}, ack
    return demo


class DemoPage:
    """The page's panels, composers and logs, as a person uses them."""

    def __init__(self, page, url):
        self.page = page
        self.errors = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/")

    def panel(self, key):
        return self.page.locator(f'[data-panel="{key}"]')

    def role(self, key, role):
        return self.panel(key).locator(f'[data-role="{role}"]')

    def wait_connected(self, *keys):
        for key in keys:
            self.wait_status(key, "connected")

    def payload(self, key, event):
        """Choose the event in the panel and return the default payload it fills in."""
        self.panel(key).locator(f'[data-event="{event}"]').click()
        return json.loads(self.role(key, "payload").input_value())

    def send(self, key, event, edit=None):
        """Send event from the panel, its default payload passed through edit(); return the ack."""
        payload = self.payload(key, event)
        if edit is not None:
            payload = edit(payload)
            self.role(key, "payload").fill(json.dumps(payload))
        mark = self.mark()
        self.role(key, "send").click()
        return self.ack_since(key, event, mark)

    def ack_since(self, key, event, mark):
        """The ack of the panel's first send of event logged after mark, once it has come.

        Raises AssertionError when the page gave up waiting for it.
        """
        entry = self.page.wait_for_function("""([key, event, mark]) => {
            const sent = [...document.querySelectorAll(`[data-panel="${key}"] li[data-kind="sent"]`)].find(
              li => li.dataset.name === event && +li.dataset.seq > mark && li.dataset.ack !== "pending");
            return sent && {state: sent.dataset.ack, ack: sent.querySelector(".ack-payload")?.textContent};
        }""", arg=[key, event, mark], timeout=2 * TIMEOUT_MS).json_value()
        assert entry["ack"] is not None, f"{event} from panel {key}: {entry['state']}"
        return json.loads(entry["ack"])

    def sent_entries(self, key):
        """The panel's sent entries, newest first: {name, payload, ack state, rtt, error event}."""
        sent = self.role(key, "log").locator('li[data-kind="sent"]')
        return sent.evaluate_all("""entries => entries.map(li => ({
            name: li.dataset.name, payload: JSON.parse(li.querySelector(".entry-payload").textContent),
            ack: li.dataset.ack, rtt: li.dataset.rtt === undefined ? null : +li.dataset.rtt,
            label: li.querySelector(".ack-label").textContent,
            errorEvent: li.dataset.errorEvent === "received", hidden: li.hidden}))""")

    def status(self, key):
        """(state, text) of the panel's connection badge."""
        badge = self.role(key, "status")
        return badge.get_attribute("data-state"), badge.text_content()

    def wait_status(self, key, state, timeout_ms=2 * TIMEOUT_MS):
        """Wait until the panel's connection badge is in state; raises AssertionError with its log."""
        try:
            badge = self.panel(key).locator(f'[data-role="status"][data-state="{state}"]')
            badge.wait_for(timeout=timeout_ms)
        except PlaywrightTimeout:
            log = self.role(key, "log").inner_text()[:2000]
            raise AssertionError(f"panel {key} is {self.status(key)}, not {state}; its log:\n{log}") from None

    def wait_error_event(self, key):
        """Wait until the server's `error` event has joined the panel's newest send (a refusal)."""
        self.page.wait_for_function("""key => document.querySelector(
            `[data-panel="${key}"] li[data-kind="sent"]`).dataset.errorEvent === 'received'""", arg=key)

    def timeline(self):
        """The timeline's rows, oldest first: {kind, from, to, event, outcome, refused lane or None}."""
        return self.page.locator("#timeline g.tl-row").evaluate_all("""rows => rows.map(g => ({
            kind: g.dataset.kind, from: g.dataset.from ?? null, to: g.dataset.to ?? null,
            lane: g.dataset.lane ?? null, event: g.dataset.event, outcome: g.dataset.outcome ?? null,
            refusal: g.querySelector('[data-kind="refusal"]')?.dataset.lane ?? null}))""")

    def add_panel(self, user_id, username):
        """Open a panel through the "Add a user" form; returns its key once it is connected."""
        keys = set(self.keys())
        self.page.fill("#add-panel-id", user_id)
        self.page.fill("#add-panel-name", username)
        self.page.click("#add-panel")
        (key,) = set(self.keys()) - keys
        self.wait_connected(key)
        return key

    def keys(self):
        return self.page.locator("[data-panel]").evaluate_all("panels => panels.map(p => p.dataset.panel)")

    def mark(self):
        """The newest log entry's sequence number: events after it belong to the next step."""
        return self.page.evaluate(
            "Math.max(0, ...[...document.querySelectorAll('[data-seq]')].map(e => +e.dataset.seq))")

    def events_since(self, mark):
        """{panel: [(event, payload), ...]} of the server events logged after mark, oldest first."""
        rows = self.page.evaluate("""mark => [...document.querySelectorAll('[data-panel]')].map(panel => [
            panel.dataset.panel,
            [...panel.querySelectorAll('li[data-kind="event"]')]
              .filter(li => +li.dataset.seq > mark)
              .sort((a, b) => a.dataset.seq - b.dataset.seq)
              .map(li => [li.dataset.name, li.querySelector('.entry-payload').textContent,
                          li.classList.contains('error')])
        ])""", mark)
        return {key: [(name, json.loads(body), is_error) for name, body, is_error in entries]
                for key, entries in rows}

    def expect(self, mark, **expected):
        """Wait until each named panel got exactly these events since mark, and the others nothing.

        Keyword names are "p" + panel key; returns {panel: {event: payload}} of what arrived.
        """
        want = {key[1:]: sorted(names) for key, names in expected.items()}
        deadline = time.monotonic() + TIMEOUT_MS / 1000

        def got():
            return {key: sorted(name for name, _, _ in entries)
                    for key, entries in self.events_since(mark).items()}

        while time.monotonic() < deadline:
            if all(set(names) <= set(got().get(key, [])) for key, names in want.items()):
                break
            time.sleep(0.05)
        time.sleep(SETTLE)
        received = got()
        assert received == {key: want.get(key, []) for key in received}, "events per panel"
        return {key: {name: payload for name, payload, _ in entries}
                for key, entries in self.events_since(mark).items()}

    def online(self, key):
        return self.role(key, "online").locator("[data-user]").evaluate_all(
            "chips => chips.map(c => c.dataset.user)")

    def wait_online(self, key, user_ids):
        """Wait until the panel's online list shows exactly these users (it is seeded over HTTP)."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while self.online(key) != user_ids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.online(key) == user_ids, f"online list of panel {key}"

    def screenshot(self, name):
        """A full-page screenshot in test-artifacts/, for a person to look at after the run."""
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=True)

    def open_connection(self, key):
        self.panel(key).locator("details.connection > summary").click()
