"""Connection state recovery on the demo page: a panel whose connection drops comes back as
the same socket, with what it missed marked as replayed, and nobody sees its user go offline;
without recovery the same drop is a new session, and its user leaves and comes back."""
import time

from tests.browser import chromium, ready

RECOVERY = {"HOMEAPP_RECOVERY_SECONDS": "120"}
GRACE = 5  # seconds: HOMEAPP_PRESENCE_GRACE's default
MESSAGE_TO_JANE = ["messageRoom", "messagePage", "messageResponseNotify"]


def replayed_since(demo, key, mark):
    """{event: replayed?} of what the panel received after mark."""
    return dict(demo.role(key, "log").locator('li[data-kind="event"]').evaluate_all(
        """(entries, mark) => entries.filter(li => +li.dataset.seq > mark)
             .map(li => [li.dataset.name, li.dataset.replayed === "yes"])""", mark))


def presence_events(demo, mark):
    return {key: [payload for name, payload, _ in entries if name == "newOnlineUser"]
            for key, entries in demo.events_since(mark).items()}


def drop(demo, key):
    """Press the panel's Drop and wait until its client is away, waiting to reconnect."""
    sid = demo.role(key, "sid").text_content()
    demo.role(key, "drop").click()
    demo.wait_status(key, "connecting")
    assert demo.status(key)[1] == "reconnecting…"
    # its online list cannot be known meanwhile: it says why it is empty, not "nobody"
    assert demo.role(key, "online").inner_text() == "reconnecting…"
    return sid


def test_a_dropped_panel_recovers_with_what_it_missed_marked_replayed(server_factory):
    server = server_factory(**RECOVERY)
    with chromium() as browser:
        demo = ready(browser, server)  # john_doe and jane in their chat room 1:2
        assert demo.role("2", "recovery").is_hidden()  # a first connect has nothing to recover
        before = mark = demo.mark()
        dropped_at = time.monotonic()
        sid = drop(demo, "2")

        assert demo.send("1", "message")["ok"] is True  # while jane is away
        demo.wait_status("2", "connected")
        got = demo.expect(mark, p1=["messageRoom"], p2=MESSAGE_TO_JANE)
        assert got["2"]["messageRoom"] == got["1"]["messageRoom"]

        recovery = demo.role("2", "recovery")
        assert (recovery.get_attribute("data-recovered"), recovery.text_content()) == ("true", "recovered")
        assert demo.role("2", "sid").text_content() == sid  # the same socket
        assert replayed_since(demo, "2", mark) == {name: True for name in MESSAGE_TO_JANE}
        assert replayed_since(demo, "1", mark) == {"messageRoom": False}
        replays = demo.page.locator('#timeline g.tl-row[data-replayed="yes"]').evaluate_all(
            "rows => rows.map(g => [g.dataset.to, g.dataset.event])")
        assert sorted(replays) == sorted(["2", name] for name in MESSAGE_TO_JANE)
        connects = demo.role("2", "log").locator('li[data-name="connect"] .entry-payload').all_text_contents()
        assert f'"sid": "{sid[4:]}", "recovered": true' in connects[0]
        demo.screenshot("demo-recovered.png")

        # back in its room without sending chatRoom.join again; what comes now is live
        mark = demo.mark()
        assert demo.send("1", "message")["ok"] is True
        demo.expect(mark, p1=["messageRoom"], p2=MESSAGE_TO_JANE)
        assert replayed_since(demo, "2", mark) == {name: False for name in MESSAGE_TO_JANE}

        # past the presence grace: no panel ever heard jane go offline
        time.sleep(max(0.0, dropped_at + GRACE + 1 - time.monotonic()))
        for key in "123":
            demo.wait_online(key, ["1", "2", "3"])
        assert presence_events(demo, before) == {key: [] for key in "123"}
        assert demo.errors == []


def test_without_recovery_a_drop_is_a_new_session_and_its_user_goes_offline_meanwhile(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = ready(browser, server)
        mark = demo.mark()
        sid = drop(demo, "2")
        for key in "13":
            demo.wait_online(key, ["1", "3"])
        assert demo.send("1", "message")["ok"] is True  # lost for jane: nothing keeps it
        demo.wait_status("2", "connected")
        for key in "123":
            demo.wait_online(key, ["1", "2", "3"])

        recovery = demo.role("2", "recovery")
        assert (recovery.get_attribute("data-recovered"), recovery.text_content()) == ("false", "new session")
        assert demo.role("2", "sid").text_content() != sid
        received = demo.events_since(mark)
        assert [name for name, _, _ in received["2"]] == ["newOnlineUser"]  # its own Add, live
        assert replayed_since(demo, "2", mark) == {"newOnlineUser": False}
        assert [(p["type"], p["userID"]) for p in presence_events(demo, mark)["1"]] == [
            ("Remove", "2"), ("Add", "2")]
        assert demo.errors == []
