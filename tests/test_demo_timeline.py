"""The timeline under the demo page's panels: who sent what, and who got it, as SVG arrows."""
from tests.browser import chromium, ready

LIMIT = 80  # rows the timeline keeps (static/timeline.js)
RED = "#b42318"


def cleared(browser, server):
    """The page ready (tests.browser.ready), its timeline just cleared."""
    demo = ready(browser, server, viewport={"width": 1400, "height": 1000})
    demo.page.click("#timeline-clear")
    demo.page.wait_for_function("() => !document.querySelector('#timeline g.tl-row')")
    assert demo.page.text_content("#timeline-count") == "0 in all"
    return demo


def test_a_message_draws_arrows_to_exactly_the_panels_that_received_it(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = cleared(browser, server)
        mark = demo.mark()
        assert demo.send("1", "message")["ok"] is True
        received = demo.expect(mark, p1=["messageRoom"],
                               p2=["messageRoom", "messagePage", "messageResponseNotify"])
        rows = demo.timeline()
        assert rows[0] == {"kind": "send", "from": "1", "to": "server", "lane": None, "event": "message",
                           "outcome": "ok", "refusal": None}
        deliveries = sorted((row["to"], row["event"]) for row in rows if row["kind"] == "delivery")
        assert deliveries == [("1", "messageRoom"), ("2", "messagePage"), ("2", "messageResponseNotify"),
                              ("2", "messageRoom")]
        assert all(row["from"] == "server" for row in rows[1:])
        # the picture and the logs agree: sara_cleaner's lane gets no arrow, her log no entry
        assert received["3"] == {} and not [row for row in rows if "3" in (row["from"], row["to"])]
        assert len(rows) == 5
        label = demo.page.locator('#timeline g[data-kind="send"] text').text_content()
        assert label.startswith("message · ") and label.endswith(" ms")
        assert demo.errors == []


def test_a_refusal_is_a_red_cross_on_the_senders_lane_and_nothing_else(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = cleared(browser, server)

        def impersonate(payload):
            payload["data"]["from"] = "1"
            payload["data"]["unreadMessArray"] = []
            return payload
        mark = demo.mark()
        assert demo.send("3", "message", impersonate)["code"] == "FORBIDDEN"
        demo.wait_error_event("3")
        demo.expect(mark)
        assert demo.timeline() == [{"kind": "send", "from": "3", "to": "server", "lane": None,
                                    "event": "message", "outcome": "refused", "refusal": "3"}]
        assert demo.page.get_attribute('#timeline [data-kind="refusal"] .tl-cross', "stroke") == RED
        assert demo.errors == []


def test_the_timeline_keeps_the_last_rows_and_clears(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = cleared(browser, server)
        demo.payload("1", "joinRoom")
        sends = LIMIT + 5
        demo.page.evaluate(f"""() => {{
            const send = document.querySelector('[data-panel="1"] [data-role="send"]');
            for (let i = 0; i < {sends}; i += 1) send.click();
        }}""")
        demo.page.wait_for_function(
            f"() => document.querySelectorAll('[data-panel=\"1\"] li[data-kind=\"sent\"][data-ack=\"ok\"]')"
            f".length >= {sends}")
        rows = demo.timeline()
        assert len(rows) == LIMIT and {(row["kind"], row["event"]) for row in rows} == {("send", "joinRoom")}
        assert demo.page.text_content("#timeline-count") == f"the last {LIMIT} of {sends}"
        demo.page.click("#timeline-clear")
        demo.page.wait_for_function("() => !document.querySelector('#timeline g.tl-row')")
        assert demo.page.text_content("#timeline-count") == "0 in all"
        assert demo.errors == []


def test_a_presence_arrow_says_add_or_remove_and_whom(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = cleared(browser, server)
        demo.role("3", "disconnect").click()
        for key in "12":
            demo.wait_online(key, ["1", "2"])
        demo.role("3", "connect").click()
        for key in "123":
            demo.wait_online(key, ["1", "2", "3"])
        arrows = demo.page.locator('#timeline g.tl-row[data-event="newOnlineUser"]').evaluate_all(
            "rows => rows.map(g => [g.dataset.to, g.dataset.presence, g.querySelector('text').textContent])")
        assert sorted(arrows) == sorted(
            [[key, "Remove", "newOnlineUser Remove #3"] for key in "12"]
            + [[key, "Add", "newOnlineUser Add #3"] for key in "123"])
        assert demo.errors == []
