"""The demo page at /, driven through its own controls in Debian's headless Chromium.

Each step sends one client event from one panel with the page's default payload
(edited where the step says so) and asserts which server events arrived in which
panels, and that no other panel received anything.
"""
import base64
import hashlib
import hmac
import json
import time

from homeapp.schemas.examples import EXAMPLES
from tests.browser import DemoPage, chromium, ok

USERNAMES = {"1": "john_doe", "2": "jane", "3": "sara_cleaner"}


def test_every_client_event_has_a_control_and_an_accepted_default_payload(server_factory):
    """The events the walk-through leaves out (test_demo_walkthrough sends the others)."""
    server = server_factory()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        demo = DemoPage(page, server.url)
        events = demo.panel("1").locator(".event-btn").evaluate_all(
            "buttons => buttons.map(button => button.dataset.event)")
        assert sorted(events) == sorted(EXAMPLES)
        demo.wait_connected("1", "2", "3")
        assert demo.page.locator('[data-role="token"]').count() == 0  # open mode: no token field
        for key in "123":
            demo.wait_online(key, ["1", "2", "3"])

        # addOnlineUser and joinRoom again: the user is online and on its channel already
        mark = demo.mark()
        for key in "123":
            assert demo.payload(key, "addOnlineUser") == {"userID": key, "userUsername": USERNAMES[key]}
            ok(demo.send(key, "addOnlineUser"))
            assert demo.payload(key, "joinRoom") == key
            ok(demo.send(key, "joinRoom"))
        for key in "123":
            ok(demo.send(key, "chatRoom.join"))
        demo.expect(mark)

        # message with contact: the first message of a conversation
        def first_contact(payload):
            payload["data"]["contact"] = True
            return payload
        mark = demo.mark()
        assert demo.send("1", "message", first_contact)["ok"] is True
        got = demo.expect(mark, p1=["messageRoom"],
                          p2=["messageRoom", "firstMessageConversation", "messageResponseNotify"])
        assert got["2"]["firstMessageConversation"]["fromUsername"] == "john_doe"
        assert got["2"]["messageResponseNotify"]["unreadUpdateStatus"] is True

        # createUserGroup (the walk-through looks at its events), then addUserToGroup: the open
        # views of the old room hear the new room id
        mark = demo.mark()
        ok(demo.send("1", "createUserGroup"))
        demo.expect(mark, p2=["createUserToGroupNotify", "createUserGroupChange"],
                    p3=["createUserToGroupNotify", "createUserGroupChange"])
        mark = demo.mark()
        ok(demo.send("1", "addUserToGroup"))
        got = demo.expect(mark, p1=["addUserToGroupChangeInRoom"],
                          p2=["addUserToGroupChangeInRoom", "addUserToGroupNotify", "addUserToGroupChange"],
                          p3=["addUserToGroupNotify", "addUserToGroupChange"])
        assert got["1"]["addUserToGroupChangeInRoom"] == "1:2:3"
        assert got["3"]["addUserToGroupNotify"]["to"] == "room"  # the example's one notification for all
        assert got["3"]["addUserToGroupNotify"]["message"] == "john_doe added sara_cleaner to the group"

        # deleteUserRoom: the group's other members
        mark = demo.mark()
        ok(demo.send("1", "deleteUserRoom"))
        got = demo.expect(mark, p2=["deleteUserRoomNotify", "deleteUserRoomChange"],
                          p3=["deleteUserRoomNotify", "deleteUserRoomChange"])
        assert got["3"]["deleteUserRoomNotify"]["roomID"] == "1:2:3"

        # commentNotification: the houseworker's own channel only
        mark = demo.mark()
        ok(demo.send("1", "commentNotification"))
        got = demo.expect(mark, p2=["privateCommentNotify", "newCommentChange"])
        assert got["2"]["newCommentChange"]["houseworkerID"] == "2"
        assert got["2"]["newCommentChange"]["from"] == "john_doe"

        # leaveRoom: jane leaves her own channel, so nothing addressed to her arrives
        mark = demo.mark()
        ok(demo.send("2", "leaveRoom"))
        ok(demo.send("1", "commentNotification"))
        demo.expect(mark)
        assert demo.errors == []


def _hs256(claims, secret):
    """A signed JWT, built by hand so the test needs no JWT library."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def test_jwt_mode_sends_the_pasted_token_as_auth(server_factory):
    secret = "demo-page-test-secret"
    server = server_factory(HOMEAPP_AUTH="jwt", HOMEAPP_JWT_SECRET=secret)
    token = _hs256({"sub": "1", "username": "john_doe", "exp": int(time.time()) + 600}, secret)
    with chromium() as browser:
        page = browser.new_page()
        sent = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(frame)))
        demo = DemoPage(page, server.url)
        assert demo.page.locator('[data-role="token"]').count() == 3
        demo.open_connection("1")
        demo.role("1", "token").fill(token)
        demo.role("1", "connect").click()
        demo.wait_connected("1")
        connect_packet = "40" + json.dumps({"token": token}, separators=(",", ":"))
        assert connect_packet in sent


def test_panels_on_two_processes_meet_through_redis(server_factory, redis_server):
    first = server_factory(REDIS_URL=redis_server.url)
    second = server_factory(REDIS_URL=redis_server.url, HOMEAPP_CORS_ORIGINS=first.url)
    with chromium() as browser:
        page = browser.new_page()
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        demo = DemoPage(page, first.url)
        demo.wait_connected("1", "2", "3")
        for key in "123":
            demo.wait_online(key, ["1", "2", "3"])

        # jane moves to the second process: offline, then online again from there
        mark = demo.mark()
        demo.role("2", "disconnect").click()
        demo.expect(mark, p1=["newOnlineUser"], p3=["newOnlineUser"])
        demo.open_connection("2")
        demo.role("2", "server-url").fill(second.url)
        mark = demo.mark()
        demo.role("2", "connect").click()
        demo.wait_connected("2")
        got = demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"], p3=["newOnlineUser"])
        assert got["1"]["newOnlineUser"] == {"type": "Add", "userID": "2"}
        assert any(url.startswith(second.url.replace("http", "ws")) for url in sockets)

        mark = demo.mark()
        ok(demo.send("1", "chatRoom.join"))
        ok(demo.send("2", "chatRoom.join"))
        assert demo.send("1", "message")["ok"] is True
        demo.expect(mark, p1=["messageRoom"], p2=["messageRoom", "messagePage", "messageResponseNotify"])
        mark = demo.mark()
        ok(demo.send("2", "ratingNotification"))
        demo.expect(mark, p1=["privateRatingNotify-1"])
        assert demo.errors == []


def test_scenario_box_rebuilds_the_default_payloads(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(), server.url)
        page = demo.page
        assert page.text_content("#scenario-room-id") == "1:2"
        assert page.is_disabled('#scenario-room input[data-user="1"]')  # a room keeps two members

        page.check('#scenario-room input[data-user="3"]')
        page.uncheck('#scenario-room input[data-user="2"]')
        assert page.text_content("#scenario-room-id") == "1:3"
        assert page.input_value("#scenario-newcomer") == "2"
        assert demo.payload("1", "message")["data"]["unreadMessArray"][0]["recipientID"] == "3"
        kick = demo.payload("1", "kickUserFromGroup")
        assert (kick["roomID"], kick["kickedUserID"], kick["newRoomID"]) == ("1:2:3", "2", "1:3")
        assert demo.payload("2", "chatRoom.join") == "1:2:3"  # outside the room: the group

        page.check('#scenario-room input[data-user="2"]')  # everyone in: a newcomer without a panel
        assert page.text_content("#scenario-group-id") == "1:2:3:4"
        group = demo.payload("1", "createUserGroup")["data"]
        assert (group["newUserID"], group["newRoomID"]) == ("4", "1:2:3:4")
        assert sorted(n["to"] for n in group["notifications"]) == ["2", "3", "4"]
        assert demo.errors == []


def test_edited_payloads_survive_a_new_panel_and_the_scenario_box(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(), server.url)
        demo.wait_connected("1", "2", "3")
        edited = '{"data": {"message": "my own words"}}'
        demo.payload("1", "message")
        demo.role("1", "payload").fill(edited)
        assert demo.role("1", "edited").is_visible()
        demo.payload("2", "startTypingRoom")

        demo.add_panel("4", "mike_butler")
        assert demo.role("1", "payload").input_value() == edited
        demo.page.check('#scenario-room input[data-user="3"]')
        assert demo.role("1", "payload").input_value() == edited
        # a payload nobody edited follows the scenario: jane's room is now 1:2:3
        assert json.loads(demo.role("2", "payload").input_value())["roomID"] == "1:2:3"

        # another event and back: still the edit; Reset brings the default back
        demo.payload("1", "joinRoom")
        demo.panel("1").locator('[data-event="message"]').click()
        assert demo.role("1", "payload").input_value() == edited
        demo.role("1", "reset").click()
        assert json.loads(demo.role("1", "payload").input_value())["data"]["roomID"] == "1:2:3"
        assert demo.role("1", "edited").is_hidden()
        assert demo.errors == []


def test_default_payloads_are_dated_now_and_the_message_keeps_its_date(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(viewport={"width": 1400, "height": 1000}), server.url)
        demo.wait_connected("1", "2", "3")
        for key in "12":
            demo.wait_online(key, ["1", "2", "3"])
            ok(demo.send(key, "chatRoom.join"))
        now = demo.page.evaluate("""() => { const d = new Date(); return {day: d.getDate(),
            month: d.getMonth() + 1, year: d.getFullYear(), minutes: d.getHours() * 60 + d.getMinutes()}; }""")

        def is_now(date):
            hours, minutes = map(int, date["time"].split(":"))
            return ((date["day"], date["month"], date["year"]) == (now["day"], now["month"], now["year"])
                    and abs(hours * 60 + minutes - now["minutes"]) <= 2)

        message = demo.payload("1", "message")["data"]
        assert is_now(message["date"]), message["date"]
        group = demo.payload("1", "createUserGroup")["data"]
        assert group["notifications"] and all(is_now(n["date"]) for n in group["notifications"])
        comment = demo.payload("1", "commentNotification")
        assert comment["newComment"]["date"] == \
            f"{now['day']:02d}.{now['month']:02d}.{now['year']}"
        assert is_now(comment["notificationObj"]["date"])
        shown = demo.page.evaluate("[...document.querySelectorAll('textarea')].map(t => t.value).join()")
        assert "25.10.2025" not in shown  # the examples' own fixed day

        mark = demo.mark()
        ack = demo.send("1", "message")
        got = demo.expect(mark, p1=["messageRoom"], p2=["messageRoom", "messagePage", "messageResponseNotify"])
        sent_date = demo.sent_entries("1")[0]["payload"]["data"]["date"]
        assert ack["date"] == sent_date == got["2"]["messageRoom"]["date"]  # the client's date is kept
        assert demo.errors == []
