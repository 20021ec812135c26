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

from tests.browser import SCREENSHOT, DemoPage, chromium


def ok(ack):
    assert ack == {"ok": True}, ack


def test_walk_through_every_client_event(server_factory):
    server = server_factory()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        demo = DemoPage(page, server.url)
        demo.wait_connected("1", "2", "3")
        assert demo.page.locator('[data-role="token"]').count() == 0  # open mode: no token field
        for key in "123":
            demo.wait_online(key, [])

        # addOnlineUser: everyone hears that each user came online
        for key in "123":
            mark = demo.mark()
            ok(demo.send(key, "addOnlineUser"))
            got = demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"], p3=["newOnlineUser"])
            assert got["2"]["newOnlineUser"] == {"type": "Add", "userID": key}
        for key in "123":
            demo.wait_online(key, ["1", "2", "3"])

        # joinRoom and chatRoom.join: subscriptions only; what they are for shows below
        mark = demo.mark()
        for key in "123":
            assert demo.payload(key, "joinRoom") == key
            ok(demo.send(key, "joinRoom"))
        assert [demo.payload(k, "chatRoom.join") for k in "123"] == ["1:2", "1:2", "1:2:3"]
        for key in "123":
            ok(demo.send(key, "chatRoom.join"))
        demo.expect(mark)

        # message: the room's open views get messageRoom, the recipient's channel the rest
        mark = demo.mark()
        ack = demo.send("1", "message")
        assert ack["ok"] is True and ack["id"] and ack["date"]["time"]
        got = demo.expect(mark, p1=["messageRoom"],
                          p2=["messageRoom", "messagePage", "messageResponseNotify"])
        assert got["2"]["messageRoom"]["from"] == "1" and got["2"]["messageRoom"]["roomID"] == "1:2"
        assert got["2"]["messageResponseNotify"]["userID"] == "2"
        assert got["2"]["messageResponseNotify"]["unreadUpdateStatus"] is True

        def first_contact(payload):
            payload["data"]["contact"] = True
            return payload
        mark = demo.mark()
        assert demo.send("1", "message", first_contact)["ok"] is True
        got = demo.expect(mark, p1=["messageRoom"],
                          p2=["messageRoom", "firstMessageConversation", "messageResponseNotify"])
        assert got["2"]["firstMessageConversation"]["fromUsername"] == "john_doe"

        # typing: the room's other open views, never the typist
        for event, relayed in (("startTypingRoom", "typingMessageStart"),
                               ("stopTypingRoom", "typingMessageStop")):
            mark = demo.mark()
            ok(demo.send("1", event))
            got = demo.expect(mark, p2=[relayed])
            assert got["2"][relayed] == {"senderID": "1", "senderUsername": "john_doe", "roomID": "1:2"}

        # createUserGroup: room 1:2 plus sara becomes 1:2:3; each member gets its own notification
        mark = demo.mark()
        ok(demo.send("1", "createUserGroup"))
        got = demo.expect(mark, p2=["createUserToGroupNotify", "createUserGroupChange"],
                          p3=["createUserToGroupNotify", "createUserGroupChange"])
        for key in "23":
            assert got[key]["createUserToGroupNotify"]["to"] == key
            assert got[key]["createUserGroupChange"]["newRoomID"] == "1:2:3"

        # addUserToGroup: also the open views of the old room hear the new room id
        mark = demo.mark()
        ok(demo.send("1", "addUserToGroup"))
        got = demo.expect(mark, p1=["addUserToGroupChangeInRoom"],
                          p2=["addUserToGroupChangeInRoom", "addUserToGroupNotify", "addUserToGroupChange"],
                          p3=["addUserToGroupNotify", "addUserToGroupChange"])
        assert got["1"]["addUserToGroupChangeInRoom"] == "1:2:3"
        assert got["3"]["addUserToGroupNotify"]["to"] == "3"

        # kickUserFromGroup: sara, the only one with 1:2:3 open, hears it in the room too
        mark = demo.mark()
        ok(demo.send("1", "kickUserFromGroup"))
        got = demo.expect(mark, p2=["kickUserFromGroupNotify", "kickUserFromGroupChange"],
                          p3=["kickUserFromGroupChangeInRoom", "kickUserFromGroupNotify",
                              "kickUserFromGroupChange"])
        assert got["3"]["kickUserFromGroupChangeInRoom"] == {
            "firstRoomID": "1:2", "kickedUserID": "3", "newRoomID": "1:2"}
        assert got["3"]["kickUserFromGroupNotify"]["notification"]["to"] == "3"
        assert got["2"]["kickUserFromGroupNotify"]["notification"]["to"] == "2"

        # deleteUserRoom: the group's other members
        mark = demo.mark()
        ok(demo.send("1", "deleteUserRoom"))
        got = demo.expect(mark, p2=["deleteUserRoomNotify", "deleteUserRoomChange"],
                          p3=["deleteUserRoomNotify", "deleteUserRoomChange"])
        assert got["3"]["deleteUserRoomNotify"]["roomID"] == "1:2:3"

        # commentNotification and ratingNotification: the houseworker's own channel only
        mark = demo.mark()
        ok(demo.send("1", "commentNotification"))
        got = demo.expect(mark, p2=["privateCommentNotify", "newCommentChange"])
        assert got["2"]["newCommentChange"]["houseworkerID"] == "2"
        mark = demo.mark()
        ok(demo.send("1", "ratingNotification"))
        got = demo.expect(mark, p2=["privateRatingNotify-2"])
        assert got["2"]["privateRatingNotify-2"]["rating"] == 5

        # chatRoom.leave: jane closes the chat view, so messageRoom no longer reaches her
        mark = demo.mark()
        ok(demo.send("2", "chatRoom.leave"))
        assert demo.send("1", "message")["ok"] is True
        demo.expect(mark, p1=["messageRoom"], p2=["messagePage", "messageResponseNotify"])

        # leaveRoom: jane leaves her own channel, so nothing addressed to her arrives
        mark = demo.mark()
        ok(demo.send("2", "leaveRoom"))
        assert demo.send("1", "message")["ok"] is True
        ok(demo.send("1", "commentNotification"))
        demo.expect(mark, p1=["messageRoom"])

        # a refused event: the sender alone gets a highlighted `error`, and the same as its ack
        def impersonate(payload):
            payload["data"].update({"from": "1", "unreadMessArray": []})
            return payload
        mark = demo.mark()
        ack = demo.send("3", "message", impersonate)
        assert ack["ok"] is False and ack["code"] == "FORBIDDEN"
        demo.expect(mark, p3=["error"])
        assert demo.events_since(mark)["3"][0][2] is True, "error events are highlighted"
        assert demo.role("3", "ack").get_attribute("data-state") == "error"

        # disconnect: the others hear that sara went offline
        mark = demo.mark()
        demo.role("3", "disconnect").click()
        got = demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"])
        assert got["1"]["newOnlineUser"] == {"type": "Remove", "userID": "3"}
        demo.wait_online("1", ["1", "2"])

        # a fourth panel: seeded from /api/online-users, then announced to the others
        page.fill("#add-panel-id", "4")
        page.fill("#add-panel-name", "mike_butler")
        page.click("#add-panel")
        demo.wait_connected("4")
        demo.wait_online("4", ["1", "2"])
        mark = demo.mark()
        ok(demo.send("4", "addOnlineUser"))
        demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"], p4=["newOnlineUser"])
        mark = demo.mark()
        demo.role("4", "remove").click()
        assert demo.panel("4").count() == 0
        got = demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"])
        assert got["2"]["newOnlineUser"] == {"type": "Remove", "userID": "4"}

        demo.role("3", "connect").click()
        demo.wait_connected("3")
        assert demo.errors == []
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)


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
        page.check("#auto-identify")

        # jane moves to the second process and identifies herself on connect
        demo.open_connection("2")
        demo.role("2", "server-url").fill(second.url)
        mark = demo.mark()
        demo.role("2", "connect").click()
        demo.wait_connected("2")
        demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"], p3=["newOnlineUser"])
        assert any(url.startswith(second.url.replace("http", "ws")) for url in sockets)

        mark = demo.mark()
        ok(demo.send("1", "addOnlineUser"))
        ok(demo.send("1", "joinRoom"))
        ok(demo.send("1", "chatRoom.join"))
        ok(demo.send("2", "chatRoom.join"))
        demo.expect(mark, p1=["newOnlineUser"], p2=["newOnlineUser"], p3=["newOnlineUser"])

        mark = demo.mark()
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
