"""The walk-through at the top of the demo page, done as a person reads it, step after step.

Each block below is one step of the page's list, in the page's order, and asserts what that
step says to expect. The page's step ids must be exactly STEPS, so that a step added, dropped
or moved there fails here until its check is written.
"""
from tests.browser import DemoPage, chromium, ok

STEPS = ["connect", "open-rooms", "message", "typing", "group", "kick", "rating", "leave",
         "refused", "offline", "tabs"]


def test_each_walkthrough_step_produces_what_it_says(server_factory):
    server = server_factory(HOMEAPP_RECOVERY_SECONDS="120")  # as the README's run command starts it
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        demo = DemoPage(page, server.url)
        assert page.locator("#walkthrough-steps > li").evaluate_all(
            "steps => steps.map(li => li.dataset.step)") == STEPS

        def show(step):
            """The step the page shows now, after Next from the one before."""
            current = page.locator("#walkthrough-steps > li.current")
            if current.get_attribute("data-step") != step:
                page.click("#walkthrough-next")
            assert current.get_attribute("data-step") == step
            assert current.is_visible()
            return current

        # the walk-through is open at the top of the page, its first step on screen
        box = page.locator("#walkthrough").bounding_box()
        assert box["y"] < 150 and box["height"] < 300, box
        show("connect")
        demo.wait_connected("1", "2", "3")
        for key in "123":
            demo.wait_online(key, ["1", "2", "3"])

        show("open-rooms")
        mark = demo.mark()
        assert [demo.payload(key, "chatRoom.join") for key in "123"] == ["1:2", "1:2", "1:2:3"]
        for key in "123":
            ok(demo.send(key, "chatRoom.join"))
        demo.expect(mark)

        # "Show me" picks the step's event in its panel; the person presses Send
        show("message").locator("button.show-me").click()
        assert demo.panel("1").get_attribute("data-chosen-event") == "message"
        mark = demo.mark()
        demo.role("1", "send").click()
        assert demo.ack_since("1", "message", mark)["ok"] is True
        demo.expect(mark, p1=["messageRoom"], p2=["messageRoom", "messagePage", "messageResponseNotify"])

        show("typing")
        for event, relayed in (("startTypingRoom", "typingMessageStart"),
                               ("stopTypingRoom", "typingMessageStop")):
            mark = demo.mark()
            ok(demo.send("1", event))
            got = demo.expect(mark, p2=[relayed])
            assert got["2"][relayed] == {"senderID": "1", "senderUsername": "john_doe", "roomID": "1:2"}

        show("group")
        mark = demo.mark()
        ok(demo.send("1", "createUserGroup"))
        got = demo.expect(mark, p2=["createUserToGroupNotify", "createUserGroupChange"],
                          p3=["createUserToGroupNotify", "createUserGroupChange"])
        for key in "23":
            assert got[key]["createUserToGroupNotify"]["to"] == key
            assert got[key]["createUserGroupChange"]["newRoomID"] == "1:2:3"

        show("kick")
        mark = demo.mark()
        ok(demo.send("1", "kickUserFromGroup"))
        got = demo.expect(mark, p2=["kickUserFromGroupNotify", "kickUserFromGroupChange"],
                          p3=["kickUserFromGroupChangeInRoom", "kickUserFromGroupNotify",
                              "kickUserFromGroupChange"])
        assert got["3"]["kickUserFromGroupChangeInRoom"]["kickedUserID"] == "3"

        show("rating")
        mark = demo.mark()
        ok(demo.send("1", "ratingNotification"))
        demo.expect(mark, p2=["privateRatingNotify-2"])

        show("leave")
        mark = demo.mark()
        ok(demo.send("2", "chatRoom.leave"))
        assert demo.send("1", "message")["ok"] is True
        demo.expect(mark, p1=["messageRoom"], p2=["messagePage", "messageResponseNotify"])

        show("refused")

        def pretend_to_be_john(payload):
            assert payload["user"]["userID"] == "2"
            payload["user"]["userID"] = "1"
            return payload
        mark = demo.mark()
        ack = demo.send("2", "startTypingRoom", pretend_to_be_john)
        assert ack["ok"] is False and ack["code"] == "FORBIDDEN"
        demo.expect(mark)  # nobody received anything, the `error` event included: it is on the send
        demo.wait_error_event("2")
        new_entries = demo.role("2", "log").locator("li").evaluate_all(
            f"entries => entries.filter(li => +li.dataset.seq > {mark}).map(li => li.dataset.kind)")
        assert new_entries == ["sent"], "shown once in jane's log"
        refusal = [row for row in demo.timeline() if row["refusal"]]
        assert [(row["from"], row["event"], row["refusal"]) for row in refusal] == [
            ("2", "startTypingRoom", "2")], "a red cross on her lane"

        show("offline")
        mark = demo.mark()
        demo.role("3", "disconnect").click()
        got = demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"])
        assert got["1"]["newOnlineUser"] == got["2"]["newOnlineUser"] == {"type": "Remove", "userID": "3"}
        for key in "12":
            demo.wait_online(key, ["1", "2"])
        mark = demo.mark()
        demo.role("3", "connect").click()
        got = demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"], p3=["newOnlineUser"])
        assert got["3"]["newOnlineUser"] == {"type": "Add", "userID": "3"}

        show("tabs")
        mark = demo.mark()
        assert demo.add_panel("2", "jane") == "2-2"
        assert demo.role("2-2", "status").is_visible()
        assert demo.panel("2-2").locator(".identity").text_content() == "jane #2 · tab 2"
        colours = [demo.panel(key).evaluate("panel => getComputedStyle(panel).borderTopColor")
                   for key in ("2", "2-2")]
        assert colours[0] != colours[1], colours
        demo.expect(mark)  # jane was online already: her new tab announces nothing
        assert demo.sent_entries("2-2")[-1]["name"] == "addOnlineUser"
        mark = demo.mark()
        assert demo.send("1", "message")["ok"] is True
        demo.expect(mark, p1=["messageRoom"], p2=["messagePage", "messageResponseNotify"],
                    **{"p2-2": ["messagePage", "messageResponseNotify"]})
        assert page.locator("#walkthrough-next").is_disabled()  # that was the last step

        assert demo.errors == []
        demo.screenshot("demo-walkthrough.png")
