"""The demo page's layout, measured: element boxes against the viewport.

At 1400x900 every panel's Send is on screen without scrolling. At 400 px nothing is cut at the
right edge: the boxes of the toolbar and the panels are each wholly on screen or wholly off it (a
swipe away), nothing inside them overflows, and the timeline's lanes and labels fit its width.
Each test leaves a screenshot in test-artifacts/ for a person to look at.
"""
import pytest

from tests.browser import DemoPage, chromium

MAX_PHONE_HEIGHT = 1500  # px of page with four panels at 400 px wide; a column of them was 4,365
TOOLBAR = ["#add-panel-form", "#scenario", ".page-actions"]


def page_size(demo):
    return demo.page.evaluate("() => ({width: document.documentElement.scrollWidth, "
                              "height: document.documentElement.scrollHeight})")


def panel_boxes(demo):
    return [demo.panel(key).bounding_box() for key in demo.keys()]


def whole(box, width):
    return box["x"] >= -0.5 and box["x"] + box["width"] <= width + 0.5


def away(box, width):
    return box["x"] + box["width"] <= 0.5 or box["x"] >= width - 0.5


def overflowing(demo, selector):
    """The elements matching selector whose content is wider than they are (cut, or scrolled)."""
    return demo.page.evaluate("""selector => [...document.querySelectorAll(selector)]
        .filter(node => node.scrollWidth > node.clientWidth + 1).map(node => node.id || node.className)""",
                              selector)


def timeline_outside(demo):
    """Texts of the timeline (lane names, arrow labels) that reach past its SVG's edges."""
    return demo.page.evaluate("""() => [...document.querySelectorAll('#timeline-lanes, #timeline')]
        .flatMap(svg => [...svg.querySelectorAll('text')].filter(text => {
            const box = text.getBBox();
            return box.x < -0.5 || box.x + box.width > svg.width.baseVal.value + 0.5;
        }).map(text => text.textContent))""")


def swipe_to(demo, row, node):
    """Swipe a row sideways as a finger does, until node is wholly on screen."""
    for _ in range(6):
        if whole(demo.page.locator(node).bounding_box(), 400):
            return
        demo.page.locator(row).evaluate("row => row.scrollBy({left: row.clientWidth * 0.6})")
        demo.page.wait_for_timeout(400)  # the snap settles
    raise AssertionError(f"{node} never came wholly on screen")


def test_at_400_px_nothing_is_cut_at_the_right_edge(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(viewport={"width": 400, "height": 800}), server.url)
        demo.wait_connected("1", "2", "3")
        demo.add_panel("4", "mike_butler")
        for key in "1234":
            demo.wait_online(key, ["1", "2", "3", "4"])
        demo.page.evaluate("window.scrollTo(0, 0)")
        assert page_size(demo)["width"] <= 400, "the page itself never scrolls sideways"
        assert page_size(demo)["height"] < MAX_PHONE_HEIGHT, page_size(demo)

        # one box, one panel at a time, whole; the others wholly off screen
        for row, nodes in ((".toolbar", TOOLBAR),
                           ("#panels", [f'[data-panel="{key}"]' for key in demo.keys()])):
            boxes = [demo.page.locator(node).bounding_box() for node in nodes]
            assert whole(boxes[0], 400), boxes[0]
            assert all(whole(box, 400) or away(box, 400) for box in boxes), boxes
            for node in nodes[1:]:
                swipe_to(demo, row, node)
                boxes = [demo.page.locator(n).bounding_box() for n in nodes]
                assert all(whole(box, 400) or away(box, 400) for box in boxes), (node, boxes)
            assert len({round(box["y"]) for box in boxes}) == 1, "side by side, a swipe apart"
        assert overflowing(demo, "#walkthrough, .toolbar > *, .panel, .panel *:not(textarea):not(.log)") == []

        walkthrough = demo.page.locator("#walkthrough").bounding_box()
        assert walkthrough["y"] < 150 and whole(walkthrough, 400)
        assert overflowing(demo, ".timeline-scroll") == [], "the lanes fit, no sideways scroll"
        lanes = demo.page.locator("#timeline-lanes g.tl-lane").evaluate_all("gs => gs.map(g => g.dataset.label)")
        assert lanes == ["server", "john_doe #1", "jane #2", "sara_cleaner #3", "mike_butler #4"]
        assert timeline_outside(demo) == []
        demo.page.locator("#timeline").scroll_into_view_if_needed()
        demo.screenshot("demo-400px.png")
        assert demo.errors == []


def test_at_1400x900_every_send_is_within_reach_at_every_step(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(viewport={"width": 1400, "height": 900}), server.url)
        demo.wait_connected("1", "2", "3")
        for key in "123":
            demo.wait_online(key, ["1", "2", "3"])
        steps = demo.page.locator("#walkthrough-steps > li").count()
        for step in range(steps):
            assert demo.page.evaluate("window.scrollY") == 0
            for key in "123":
                send = demo.role(key, "send").bounding_box()
                assert send["y"] >= 0 and send["y"] + send["height"] <= 900 and whole(send, 1400), (step, key, send)
            if step < steps - 1:
                demo.page.click("#walkthrough-next")
        demo.screenshot("demo-1400x900.png")
        assert demo.errors == []


@pytest.mark.parametrize("width", [1400, 1024])
def test_at_desktop_widths_the_default_panels_fit_side_by_side(server_factory, width):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(viewport={"width": width, "height": 900}), server.url)
        demo.wait_connected("1", "2", "3")
        boxes = panel_boxes(demo)
        assert len({round(box["y"]) for box in boxes}) == 1, "one row"
        assert boxes[-1]["x"] + boxes[-1]["width"] <= width, "all three in view"
        assert page_size(demo)["width"] <= width
        assert demo.page.locator("#walkthrough").bounding_box()["y"] < 150
        assert timeline_outside(demo) == []
        demo.screenshot(f"demo-{width}px.png")
        assert demo.errors == []
