"""A panel's log on the demo page: what it sent with each ack's round trip, a filter, copy
buttons, whole payloads, and a refused event shown once."""
import json

from tests.browser import chromium, ready

MESSAGE_TO_JANE = ["messageRoom", "messagePage", "messageResponseNotify"]


def test_each_send_is_logged_with_its_payload_and_its_ack_round_trip(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = ready(browser, server)
        payload = demo.payload("1", "message")
        ack = demo.send("1", "message")
        newest = demo.sent_entries("1")[0]
        assert (newest["name"], newest["payload"], newest["ack"]) == ("message", payload, "ok")
        assert isinstance(newest["rtt"], int) and newest["rtt"] >= 0
        assert newest["label"] == f"ack in {newest['rtt']} ms"
        assert ack["ok"] is True and ack["id"]  # the ack itself, with the server's message id
        assert demo.errors == []


def test_the_filter_shows_only_matching_entries(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = ready(browser, server)
        mark = demo.mark()
        assert demo.send("1", "message")["ok"] is True
        demo.expect(mark, p1=["messageRoom"], p2=MESSAGE_TO_JANE)
        log = demo.role("2", "log")

        def visible():
            return log.locator("li:visible").evaluate_all("entries => entries.map(li => li.dataset.name)")

        everything = visible()
        demo.role("2", "filter").fill("messagepage")  # any case
        assert visible() == ["messagePage"]
        demo.role("2", "filter").fill("sent")
        assert set(visible()) == {"chatRoom.join", "joinRoom", "addOnlineUser"}
        demo.role("2", "filter").fill("Friday")  # text inside payloads
        assert set(visible()) == {"messageRoom", "messagePage", "messageResponseNotify"}
        assert demo.send("2", "message")["ok"] is True  # a new entry obeys the filter too
        assert set(visible()) == {"messageRoom", "messagePage", "messageResponseNotify", "message"}
        demo.role("2", "filter").fill("")
        assert len(visible()) == len(everything) + 2  # its own message and its echo
        assert demo.errors == []


def test_copy_puts_a_payload_on_the_clipboard(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = ready(browser, server, permissions=["clipboard-read", "clipboard-write"])
        mark = demo.mark()
        assert demo.send("1", "message")["ok"] is True
        got = demo.expect(mark, p1=["messageRoom"], p2=MESSAGE_TO_JANE)
        clipboard = "() => navigator.clipboard.readText()"

        entry = demo.role("2", "log").locator('li[data-name="messagePage"]')
        entry.locator("button.copy").click()
        assert json.loads(demo.page.evaluate(clipboard)) == got["2"]["messagePage"]
        assert entry.locator("button.copy").text_content() == "Copied"

        demo.role("1", "copy-payload").click()
        assert demo.page.evaluate(clipboard) == demo.role("1", "payload").input_value()
        assert demo.errors == []


def test_a_long_payload_is_shown_whole_not_clipped(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = ready(browser, server)
        text = " ".join(["a long message that has to wrap"] * 100)

        def long(payload):
            payload["data"]["message"] = payload["data"]["lastMessage"] = text
            return payload
        mark = demo.mark()
        assert demo.send("1", "message", long)["ok"] is True
        demo.expect(mark, p1=["messageRoom"], p2=MESSAGE_TO_JANE)
        payload = demo.role("2", "log").locator('li[data-name="messageRoom"] .entry-payload')
        assert text in payload.text_content()
        size = payload.evaluate("pre => ({client: pre.clientHeight, scroll: pre.scrollHeight, "
                                "clientWidth: pre.clientWidth, scrollWidth: pre.scrollWidth})")
        assert size["scroll"] <= size["client"] and size["scrollWidth"] <= size["clientWidth"], size
        assert size["client"] > 200, "wrapped over many lines"
        assert demo.errors == []


def test_a_refused_event_is_one_entry_in_the_senders_log(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = ready(browser, server)

        def impersonate(payload):
            payload["user"]["userID"] = "1"
            return payload
        mark = demo.mark()
        ack = demo.send("2", "startTypingRoom", impersonate)
        assert ack["ok"] is False and ack["code"] == "FORBIDDEN" and ack["event"] == "startTypingRoom"
        demo.wait_error_event("2")
        demo.expect(mark)  # no `error` entry anywhere: the server's error event is on the send
        entries = demo.role("2", "log").locator("li").evaluate_all(
            f"entries => entries.filter(li => +li.dataset.seq > {mark}).map(li => li.textContent)")
        assert len(entries) == 1 and entries[0].count("FORBIDDEN") == 2, entries  # the label and the ack
        newest = demo.sent_entries("2")[0]
        assert (newest["ack"], newest["errorEvent"]) == ("refused", True)
        assert newest["label"] == f"refused FORBIDDEN · ack in {newest['rtt']} ms"
        assert demo.panel("2").locator(".composer").text_content().count("FORBIDDEN") == 0
        assert demo.errors == []
