"""The Socket.IO Admin UI at /admin/, as an operator logs in to it in a browser."""
import pytest

from tests.browser import TIMEOUT_MS, chromium
from tests.conftest import FAST
from tests.credentials import ADMIN, ADMIN_ENV
from tests.live import Peer, new_user_id


def switch_on(page, label):
    """Turn a Vuetify switch on as a person does, by its label; leave it on if it is."""
    switch = page.get_by_label(label)  # the input itself is hidden under the drawn switch
    if switch.get_attribute("aria-checked") != "true":
        page.locator("label", has_text=label).click()
    switch.and_(page.locator('[aria-checked="true"]')).wait_for(state="attached")


def log_in(page, url, password):
    """Fill in the UI's connection form, websocket only, and send it; url None keeps what the
    Server URL field holds."""
    if url is not None:
        page.get_by_label("Server URL").fill(url)
    page.get_by_label("Username").fill(ADMIN["username"])
    page.get_by_label("Password").fill(password)
    switch_on(page, "Advanced options")
    switch_on(page, "WebSocket only?")
    page.get_by_role("button", name="Connect").click()


def test_an_operator_logs_in_and_sees_the_server_listed(server_factory):
    server = server_factory(**ADMIN_ENV, **FAST)
    user = Peer(server.url, new_user_id())
    try:
        with chromium() as browser:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            requested, errors = [], []
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(server.url + "/admin/")

            log_in(page, server.url, "not the password")
            page.get_by_text("Invalid credentials").wait_for()
            log_in(page, server.url, ADMIN["password"])
            page.get_by_label("Server URL").wait_for(state="hidden")
            page.get_by_role("link", name="Servers").click()
            row = page.locator("tbody tr", has_text=str(server.proc.pid))
            row.wait_for(timeout=2 * TIMEOUT_MS)  # the first server_stats comes within 2 s
            cells = row.locator("td").all_inner_texts()
            assert "HEALTHY" in cells[-2].upper()
            page.wait_for_function(  # the operator's socket and the user's; other rows may say "no data"
                "pid => [...document.querySelectorAll('tbody tr')].some(r => r.cells.length > 4"
                " && r.cells[2].innerText == pid && r.cells[4].innerText == '2')",
                arg=str(server.proc.pid), timeout=2 * TIMEOUT_MS)
            assert errors == []
            assert all(url.startswith(server.url + "/") for url in requested), \
                [url for url in requested if not url.startswith(server.url + "/")]
    finally:
        user.close()


def admin_page(browser, server):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/admin/")
    return page, errors


def on_dashboard(page):
    """The login dialog is gone and the dashboard is shown, connected."""
    page.get_by_label("Server URL").wait_for(state="hidden")
    page.get_by_text("connected", exact=True).first.wait_for()
    assert page.url.endswith("/admin/#/")  # the dashboard is the UI's first page


@pytest.fixture(scope="module")
def admin_server(server_factory):
    return server_factory(**ADMIN_ENV, **FAST)


@pytest.mark.parametrize("typed", [None, "{origin}/admin", "{origin}/admin/", "{origin}/"],
                         ids=["pre-filled", "with-admin", "with-admin-slash", "trailing-slash"])
def test_the_login_reaches_the_dashboard_with_the_prefilled_or_page_url(admin_server, typed):
    with chromium() as browser:
        page, errors = admin_page(browser, admin_server)
        server_url = page.get_by_label("Server URL")
        server_url.wait_for()
        page.wait_for_function("url => document.querySelector('form input').value === url", arg=admin_server.url)
        log_in(page, typed and typed.format(origin=admin_server.url), ADMIN["password"])
        on_dashboard(page)
        assert page.evaluate("localStorage.getItem('server_url')") == admin_server.url
        assert errors == []


@pytest.mark.parametrize("typed", ["{origin}/socket.io", "{origin}/admin/admin", "{origin}/admin?x=1",
                                   "ftp://127.0.0.1:1", "not a url"],
                         ids=["other-path", "admin-twice", "query", "other-scheme", "garbage"])
def test_a_server_url_with_another_path_is_answered_in_words(admin_server, typed):
    with chromium() as browser:
        page, errors = admin_page(browser, admin_server)
        requested = []
        page.on("websocket", lambda ws: requested.append(ws.url))
        page.on("request", lambda request: "/socket.io/" in request.url and requested.append(request.url))
        log_in(page, typed.format(origin=admin_server.url), ADMIN["password"])
        alert = page.get_by_role("alert")
        alert.wait_for()
        assert "without a path" in alert.text_content() and admin_server.url in alert.text_content()
        assert page.get_by_label("Server URL").is_visible()
        assert requested == []  # nothing was sent
        # corrected, it connects, and the message goes
        log_in(page, admin_server.url, ADMIN["password"])
        on_dashboard(page)
        assert page.get_by_role("alert").count() == 0
        assert errors == []
