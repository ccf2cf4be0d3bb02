"""The admin page in a real browser, on SQLite and PostgreSQL: what a person does with
it, end to end (log in, find an order, travel in time, follow causes, work the dead
letters, watch the live tail, rebuild a projection)."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from tests.admin.conftest import Server, log_in

pytestmark = pytest.mark.postgres


def test_a_visitor_is_sent_to_log_in_and_a_wrong_key_is_refused(page: Page, server: Server) -> None:
    page.goto("/admin/projections")
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    page.get_by_label("API key").fill("el_0000000000000000_" + "x" * 43)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("API key").fill(server.keys["writer"])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("no 'read' scope")
    page.get_by_label("API key").fill(server.keys["admin"])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/projections$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Projections and processes")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/admin/login"))
    page.goto("/admin")
    expect(page).to_have_url(re.compile(r"/admin/login"))


def test_the_session_cookie_is_http_only_and_same_site_strict(
    page: Page, context: BrowserContext, server: Server
) -> None:
    log_in(page, server.keys["reader"])
    (cookie,) = [c for c in context.cookies() if c["name"] == "eventledger_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert server.keys["reader"] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""


def test_find_an_order_and_travel_in_time(page: Page, server: Server) -> None:
    log_in(page, server.keys["reader"])
    page.get_by_role("link", name="Streams").click()
    page.get_by_label("or category").select_option("Order")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Order-o-1003", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Order-o-1003")
    expect(page.get_by_role("heading", name=re.compile("OrderDelivered"))).to_be_visible()
    page.get_by_role("link", name="Time travel").click()
    result = page.locator("#travel-result")
    expect(result).to_contain_text('"status": "delivered"')
    slider = page.get_by_label(re.compile("^Version"))
    slider.fill("1")  # the script shows that version as the slider moves
    expect(result.get_by_role("heading", level=2)).to_have_text("Version 1")
    expect(result.locator("pre")).to_contain_text('"status": "created"')
    expect(page).to_have_url(re.compile(r"version=1$"))
    slider.fill("2")
    expect(result.locator("pre")).to_contain_text('"status": "paid"')
    changed = result.locator("table.diff tr.changed", has_text="status")
    expect(changed).to_contain_text('"created"')
    expect(changed).to_contain_text('"paid"')
    # A time before the order existed: version 0 does not exist, the page says so.
    page.get_by_label("Or as it was at").fill("2000-01-01T00:00:00")
    page.get_by_role("button", name="Show then").click()
    expect(page.get_by_role("alert")).to_be_visible()


def test_follow_an_event_to_its_cause(page: Page, server: Server) -> None:
    log_in(page, server.keys["reader"], "/admin/streams/Order-o-1003")
    shipped = page.get_by_role("article").filter(has_text="OrderShipped")
    shipped.get_by_role("link", name=re.compile("causes and effects")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("OrderShipped")
    # The process shipped it: a command it sent, caused by the payment event.
    expect(page.locator("dd", has_text="ShipOrder")).to_be_visible()
    tree = page.locator(".tree")
    expect(tree.locator("li.subject")).to_contain_text("OrderShipped")
    tree.get_by_role("link", name="OrderPaid").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("OrderPaid")
    expect(page.locator("dd", has_text="PayOrder")).to_be_visible()


def test_retry_a_parked_dead_letter_after_the_fix(page: Page, server: Server) -> None:
    log_in(page, server.keys["admin"], "/admin/dead-letters?projection=stock_audit")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(4)
    first = rows.first
    letter = first.get_by_role("link").first.inner_text()
    first.get_by_role("button", name=re.compile("^Retry")).click()
    # Still broken: the retry fails again, and the page says why.
    expect(page.get_by_role("alert")).to_contain_text("switched off")
    server.flag.unlink()  # the fix
    page.goto("/admin/dead-letters?projection=stock_audit")
    page.get_by_role("row", name=re.compile(re.escape(letter))).get_by_role(
        "button", name=re.compile("^Retry")
    ).click()
    expect(page.get_by_role("status")).to_contain_text("handled again")
    expect(page.get_by_role("link", name=letter, exact=True)).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(3)
    # Skipping asks first (the script's dialog), then the letter leaves the list too.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tbody tr").first.get_by_role("button", name=re.compile("^Skip")).click()
    expect(page.get_by_role("status")).to_contain_text("skipped")
    expect(page.locator("tbody tr")).to_have_count(2)


def test_a_new_event_arrives_in_the_live_tail(page: Page, server: Server) -> None:
    log_in(page, server.keys["reader"], "/admin/live?categories=Stock")
    expect(page.get_by_role("status")).to_contain_text("Following the log")
    with server.api("admin") as api:
        answer = api.post("/commands/AddStock", json={"sku": "KITE", "quantity": 3})
        assert answer.status_code == 200, answer.text
    row = page.locator("#live-rows tr").first
    expect(row).to_contain_text("StockAdded")
    expect(row).to_contain_text("Stock-KITE")
    page.get_by_role("button", name="Pause").click()
    with server.api("admin") as api:
        assert api.post("/commands/AddStock", json={"sku": "KITE", "quantity": 4}).is_success
    expect(page.get_by_role("status")).to_contain_text("1 new event waiting")
    expect(page.locator("#live-rows tr")).to_have_count(1)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#live-rows tr")).to_have_count(2)


def test_rebuild_a_projection_and_see_it_finish(page: Page, server: Server) -> None:
    log_in(page, server.keys["admin"], "/admin/projections")
    row = page.locator("tr#order_list")
    expect(row).to_contain_text("generation 1")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=re.compile("^Rebuild")).click()
    expect(page.get_by_role("status")).to_contain_text("rebuilding order_list")
    # The table refreshes itself: the rebuild finishes and generation 2 takes over.
    expect(page.locator("tr#order_list")).to_contain_text("generation 2", timeout=30_000)
    expect(page.locator("tr#order_list")).to_contain_text("running")
    expect(page.locator("tr#order_list progress")).to_have_count(0)


def test_a_rebuild_without_javascript_asks_on_a_page_of_its_own(
    browser_without_scripts: BrowserContext, server: Server
) -> None:
    page = browser_without_scripts.new_page()
    log_in(page, server.keys["admin"], "/admin/projections")
    page.locator("tr#daily_sales").get_by_role("button", name=re.compile("^Reset")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset daily_sales?")
    page.get_by_role("button", name="Reset daily_sales").click()
    expect(page.get_by_role("status")).to_contain_text("daily_sales was reset")
    # Times read in UTC without the script.
    page.goto("/admin/streams?category=Order")
    expect(page.locator("time").first).to_contain_text("UTC")


def test_a_read_only_key_sees_everything_and_no_buttons(page: Page, server: Server) -> None:
    log_in(page, server.keys["reader"], "/admin/projections")
    expect(page.get_by_role("note")).to_contain_text("Read-only")
    expect(page.get_by_role("button", name=re.compile("^(Rebuild|Reset)"))).to_have_count(0)
    page.goto("/admin/dead-letters")
    expect(page.locator("tbody tr").first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^(Retry|Skip)"))).to_have_count(0)


def test_the_api_docs_work_offline(context: BrowserContext, server: Server) -> None:
    outside: list[str] = []

    def only_loopback(route, request) -> None:  # type: ignore[no-untyped-def]
        if request.url.startswith(server.base_url) or request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.goto("/")
    page.get_by_role("main").get_by_role("link", name="API docs").click()
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("admin-test")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    assert outside == []


PAGES = {
    "landing": "/",
    "overview": "/admin",
    "streams": "/admin/streams?category=Order",
    "stream": "/admin/streams/Order-o-1003",
    "event": None,  # found on the stream's page
    "travel": "/admin/travel/Order-o-1002?version=2",
    "log": "/admin/log",
    "live": "/admin/live",
    "projections": "/admin/projections",
    "dead-letters": "/admin/dead-letters",
    "dead-letter": None,
    "processes": "/admin/processes",
    "instances": "/admin/processes/order_fulfilment",
    "instance": "/admin/processes/order_fulfilment/instances/o-1002",
    "login": "/admin/login",
    "docs": "/docs",
}


def test_every_page_has_no_accessibility_violations_and_is_photographed(
    page: Page, context: BrowserContext, server: Server
) -> None:
    axe = Axe()
    log_in(page, server.keys["admin"])
    found: dict[str, list[str]] = {}
    for name, path in PAGES.items():
        if name == "event":
            page.goto("/admin/streams/Order-o-1003")
            page.get_by_role("link", name=re.compile("causes and effects")).first.click()
        elif name == "dead-letter":
            page.goto("/admin/dead-letters")
            page.locator("tbody tr").first.get_by_role("link").first.click()
        else:
            assert path is not None
            if name == "login":
                context.clear_cookies()
            page.goto(path)
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # the script's first touches (times, the live feed)
        page.screenshot(path=server.artefacts / f"{name}.png", full_page=True)
        if name == "docs":
            continue  # Swagger UI's own markup is not ours to fix
        results = axe.run(page)
        if results.violations_count:
            found[name] = [
                f"{v['id']} ({v['impact']}): {v['help']} at "
                + ", ".join(str(n["target"]) for n in v["nodes"][:3])
                for v in results.response["violations"]
            ]
    assert found == {}, found


def test_keyboard_alone_reaches_the_sections(page: Page, server: Server) -> None:
    log_in(page, server.keys["reader"])
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#main$"))
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
    page.goto("/admin")
    page.keyboard.press("Tab")  # skip link
    page.keyboard.press("Tab")  # brand
    page.keyboard.press("Tab")  # Overview
    page.keyboard.press("Tab")  # Streams
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("/admin/streams$"))
