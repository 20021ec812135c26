"""The demo page's layout: panels side by side at every width, the walk-through on top.

Each test leaves a full-page screenshot in test-artifacts/ for a person to look at.
"""
import pytest

from tests.browser import DemoPage, chromium

MAX_PHONE_HEIGHT = 1500  # px of page with four panels at 400 px wide; a column of them was 4,365


def page_size(demo):
    return demo.page.evaluate("() => ({width: document.documentElement.scrollWidth, "
                              "height: document.documentElement.scrollHeight})")


def panel_boxes(demo):
    return [demo.panel(key).bounding_box() for key in demo.keys()]


def test_at_400_px_four_panels_stay_side_by_side_in_a_short_page(server_factory):
    server = server_factory()
    with chromium() as browser:
        demo = DemoPage(browser.new_page(viewport={"width": 400, "height": 800}), server.url)
        demo.wait_connected("1", "2", "3")
        demo.add_panel("4", "mike_butler")
        for key in "1234":
            demo.wait_online(key, ["1", "2", "3", "4"])

        boxes = panel_boxes(demo)
        assert len({round(box["y"]) for box in boxes}) == 1, "one row"
        assert [box["x"] for box in boxes] == sorted(box["x"] for box in boxes)
        assert boxes[0]["width"] <= 400 and boxes[1]["x"] >= boxes[0]["x"] + boxes[0]["width"]
        size = page_size(demo)
        assert size["width"] <= 400, "the row scrolls inside itself, not the page"
        assert size["height"] < MAX_PHONE_HEIGHT, size
        walkthrough = demo.page.locator("#walkthrough").bounding_box()
        assert walkthrough["y"] < 150 and walkthrough["y"] + walkthrough["height"] < 800

        # the next panel is a swipe away
        demo.page.locator("#panels").evaluate("row => row.scrollBy(row.clientWidth, 0)")
        demo.page.wait_for_function("() => document.querySelector('#panels').scrollLeft > 0")
        demo.screenshot("demo-400px.png")
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
        demo.screenshot(f"demo-{width}px.png")
        assert demo.errors == []
