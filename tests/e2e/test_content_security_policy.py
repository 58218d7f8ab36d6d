"""Under the Content-Security-Policy every page still works in a real browser: the home page,
the admin and its audit pages, and the API docs, with no violation reported."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import History


def _violations(page: Page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    return found


def test_every_page_works_under_the_policy(auditor_page: Page, history: History):
    page = auditor_page
    violations = _violations(page)
    response = page.goto("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    expect(page.locator("table").first).to_be_visible()
    assert page.locator("header").evaluate("e => getComputedStyle(e).backgroundColor") != (
        "rgba(0, 0, 0, 0)"
    )  # the stylesheet applied
    page.goto("/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    page.goto("/admin/eventsourcing_app/event/")
    expect(page.locator("#result_list")).to_be_visible()
    page.goto(f"/admin/eventsourcing_app/event/timeline/{history.account_id}/")
    expect(page.locator("svg.es-chart polyline")).to_be_visible()
    card = page.locator(".es-card").first
    assert card.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
    docs = page.goto("/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    docs_policy = docs.headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in docs_policy  # Swagger UI styles as it renders
    directives = {part.strip() for part in docs_policy.split(";")}
    assert "script-src 'self'" in directives  # but runs no inline script
    assert violations == []
