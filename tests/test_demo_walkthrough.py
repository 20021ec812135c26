"""The walk-through at the top of the demo page, done as a person reads it, step after step.

Each block below is one step of the page's list, in the page's order, and asserts what that
step says to expect. The page's step ids must be exactly STEPS, so that a step added, dropped
or moved there fails here until its check is written.
"""
import pytest

from tests.browser import ARTIFACTS, DemoPage, chromium, ok


def tick(page, user_id, checked):
    """Tick or untick a user among the Scenario box's chat room members."""
    box = page.locator(f'#scenario-room input[data-user="{user_id}"]')
    box.set_checked(checked)
    assert box.is_checked() == checked

STEPS = ["connect", "open-rooms", "message", "typing", "group", "group-message", "kick", "add-member",
         "delete", "rating", "comment", "channel", "leave", "refused", "drop", "offline", "tabs"]
# every control of a panel and of the page that some step uses
CONTROLS = {"addOnlineUser", "joinRoom", "leaveRoom", "chatRoom.join", "chatRoom.leave", "message",
            "startTypingRoom", "stopTypingRoom", "createUserGroup", "addUserToGroup", "kickUserFromGroup",
            "deleteUserRoom", "commentNotification", "ratingNotification", "Drop", "Disconnect", "Connect",
            "Add a user", "Scenario"}


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

        show("group-message")
        tick(page, "3", True)
        assert page.text_content("#scenario-room-id") == "1:2:3"
        mark = demo.mark()
        for key in "12":
            assert demo.payload(key, "chatRoom.join") == "1:2:3"
            ok(demo.send(key, "chatRoom.join"))
        assert demo.payload("1", "message")["data"]["roomID"] == "1:2:3"
        assert demo.send("1", "message")["ok"] is True
        got = demo.expect(mark, p1=["messageRoom"], p2=["messageRoom", "messagePage", "messageResponseNotify"],
                          p3=["messageRoom", "messagePage", "messageResponseNotify"])
        for key in "23":
            assert got[key]["messageResponseNotify"]["userID"] == key

        show("kick")
        mark = demo.mark()
        ok(demo.send("1", "kickUserFromGroup"))
        got = demo.expect(mark, p1=["kickUserFromGroupChangeInRoom"],
                          p2=["kickUserFromGroupChangeInRoom", "kickUserFromGroupNotify", "kickUserFromGroupChange"],
                          p3=["kickUserFromGroupChangeInRoom", "kickUserFromGroupNotify",
                              "kickUserFromGroupChange"])
        assert got["3"]["kickUserFromGroupChangeInRoom"]["kickedUserID"] == "3"
        assert got["3"]["kickUserFromGroupChange"]["newRoomID"] == "1:2"

        show("add-member")
        mark = demo.mark()
        assert demo.add_panel("4", "mike_butler") == "4"
        got = demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"], p3=["newOnlineUser"],
                          p4=["newOnlineUser"])
        assert {payload["newOnlineUser"]["userID"] for payload in got.values()} == {"4"}
        for key in "1234":
            demo.wait_online(key, ["1", "2", "3", "4"])
        assert page.input_value("#scenario-newcomer") == "4"
        mark = demo.mark()
        ok(demo.send("1", "addUserToGroup"))
        got = demo.expect(mark, p1=["addUserToGroupChangeInRoom"],
                          p2=["addUserToGroupChangeInRoom", "addUserToGroupNotify", "addUserToGroupChange"],
                          p3=["addUserToGroupNotify", "addUserToGroupChange"],
                          p4=["addUserToGroupNotify", "addUserToGroupChange"])
        assert got["1"]["addUserToGroupChangeInRoom"] == "1:2:3:4"
        for key in "234":
            assert got[key]["addUserToGroupNotify"]["to"] in (key, "room")  # its own, or the room's
            assert got[key]["addUserToGroupChange"]["newRoomID"] == "1:2:3:4"

        show("delete")
        mark = demo.mark()
        ok(demo.send("1", "deleteUserRoom"))
        got = demo.expect(mark, p2=["deleteUserRoomNotify", "deleteUserRoomChange"],
                          p3=["deleteUserRoomNotify", "deleteUserRoomChange"])
        for key in "23":
            assert got[key]["deleteUserRoomChange"] == {"roomID": "1:2:3"}
            assert got[key]["deleteUserRoomNotify"]["roomID"] == "1:2:3"

        show("rating")
        tick(page, "3", False)
        assert page.text_content("#scenario-room-id") == "1:2"
        mark = demo.mark()
        ok(demo.send("1", "ratingNotification"))
        demo.expect(mark, p2=["privateRatingNotify-2"])

        show("comment")
        mark = demo.mark()
        ok(demo.send("1", "commentNotification"))
        got = demo.expect(mark, p2=["privateCommentNotify", "newCommentChange"])
        assert got["2"]["newCommentChange"]["houseworkerID"] == "2"

        show("channel")
        mark = demo.mark()
        ok(demo.send("2", "leaveRoom"))
        ok(demo.send("1", "ratingNotification"))
        demo.expect(mark)  # jane's only socket is off her channel: the rating reaches nobody
        mark = demo.mark()
        ok(demo.send("2", "joinRoom"))
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

        show("drop")
        mark = demo.mark()
        demo.role("2", "drop").click()
        demo.wait_status("2", "connecting")
        assert demo.status("2")[1] == "reconnecting…"
        assert demo.role("2", "online").inner_text() == "reconnecting…"
        assert demo.send("1", "message")["ok"] is True  # while jane is away
        demo.wait_status("2", "connected")
        got = demo.expect(mark, p1=["messageRoom"], p2=["messagePage", "messageResponseNotify"])
        assert demo.role("2", "recovery").text_content() == "recovered"
        replayed = demo.role("2", "log").locator('li[data-kind="event"][data-replayed]').evaluate_all(
            f"entries => entries.filter(li => +li.dataset.seq > {mark}).map(li => li.dataset.name)")
        assert sorted(replayed) == ["messagePage", "messageResponseNotify"]

        show("offline")
        mark = demo.mark()
        demo.role("3", "disconnect").click()
        got = demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"], p4=["newOnlineUser"])
        assert got["1"]["newOnlineUser"] == got["2"]["newOnlineUser"] == {"type": "Remove", "userID": "3"}
        for key in "124":
            demo.wait_online(key, ["1", "2", "4"])
        mark = demo.mark()
        demo.role("3", "connect").click()
        got = demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"], p3=["newOnlineUser"],
                          p4=["newOnlineUser"])
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

        # every control is in some step
        text = page.text_content("#walkthrough-steps")
        assert {control for control in CONTROLS if control not in text} == set()


def in_view(box, viewport):
    return (box["x"] >= -0.5 and box["y"] >= -0.5 and box["x"] + box["width"] <= viewport["width"] + 0.5
            and box["y"] + box["height"] <= viewport["height"] + 0.5)


@pytest.mark.parametrize("viewport", [{"width": 1400, "height": 900}, {"width": 400, "height": 800}],
                         ids=["1400x900", "400px"])
def test_show_me_picks_the_event_in_each_panel_the_step_names_and_keeps_the_step_in_view(server_factory,
                                                                                         viewport):
    server = server_factory()
    with chromium() as browser:
        page = browser.new_page(viewport=viewport)
        demo = DemoPage(page, server.url)
        demo.wait_connected("1", "2", "3")
        steps = page.locator("#walkthrough-steps > li")
        shown = 0
        for index in range(steps.count()):
            step = steps.nth(index)
            keys = (step.get_attribute("data-show-panel") or "").split()
            event = step.get_attribute("data-show-event")
            if keys:
                # from the far end of the page, and with every panel on another event
                page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
                for key in "123":
                    demo.panel(key).locator('[data-event="addOnlineUser"]').click()
                page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
                step.locator("button.show-me").click()
                if event:
                    assert [demo.panel(key).get_attribute("data-chosen-event") for key in keys] == \
                        [event] * len(keys), step.get_attribute("data-step")
                    others = [key for key in "123" if key not in keys]
                    assert all(demo.panel(key).get_attribute("data-chosen-event") == "addOnlineUser"
                               for key in others)
                assert in_view(step.bounding_box(), viewport), step.get_attribute("data-step")
                send = demo.role(keys[0], "send").bounding_box()
                assert in_view(send, viewport), (step.get_attribute("data-step"), send)
                # neither it nor the payload it sends under the sticky walk-through
                walkthrough = page.locator("#walkthrough").bounding_box()
                payload = demo.role(keys[0], "payload").bounding_box()
                assert in_view(payload, viewport)
                assert payload["y"] >= walkthrough["y"] + walkthrough["height"], step.get_attribute("data-step")
                if viewport["width"] == 400:  # its panel wholly on screen, not a sliver of it
                    panel = demo.panel(keys[0]).bounding_box()
                    assert panel["x"] >= -0.5 and panel["x"] + panel["width"] <= 400.5
                shown += 1
            if index < steps.count() - 1:
                page.click("#walkthrough-next")
        assert shown >= 12
        # the screen as a person sees it (a full-page picture draws the sticky box mid-page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"demo-show-me-{viewport['width']}px.png"))
        assert demo.errors == []
