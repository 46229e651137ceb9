"""The steps a browser test takes in the console (Playwright pages), said once: sign in,
pick a unit in the tree picker, open a page from the menu, wait for a record another node
sends, check that what a person reads names no code."""
from __future__ import annotations

import re

from tests.harness import wait_for
from tests.harness.pair import PASSWORD

HOME = "h1:has-text('工作台')"  # where a sign-in lands


def sign_in(page, node, user_id, password=PASSWORD, until=None):
    """Signs in on the console's login page; with ``until``, waits for that selector."""
    page.goto(node.url + "/login")
    page.fill("input[name=user_id]", user_id)
    page.fill("input[name=password]", password)
    page.click("button:has-text('登录')")
    if until:
        page.wait_for_selector(until)


def pick(page, legend: str, name: str):
    """The tree picker: search by name, then click the unit."""
    picker = page.locator("fieldset.picker", has=page.locator("legend", has_text=legend))
    picker.locator("input.picker-search").fill(name)
    picker.locator("label.picker-item:visible", has_text=name).first.click()


def open_menu(page, title: str, heading: str | None = None) -> None:
    page.click("nav.menu a:has-text('%s')" % title)
    page.wait_for_selector("h1:has-text('%s')" % (heading or title))


def reload_until(page, text, timeout_s: float = 40.0, what: str | None = None) -> None:
    """The other node's record arrives through the federation: reload until it shows.
    ``text`` is what the page's main part must hold, or a check: a function of the page, true
    once it shows what is awaited (a record gone, a state changed)."""
    def shown():
        if text(page) if callable(text) else text in page.inner_text("main"):
            return True
        page.reload()
        return False
    wait_for(shown, timeout_s, 0.5, "%s to reach %s" % (what or text, page.url))


def no_codes(text: str, codes: str, html: bool = True) -> None:
    """What a person reads names no code or id: no traceback, no whole word of the
    alternation ``codes`` (a regular expression); with ``html``, tags are left out first."""
    if html:
        text = re.sub(r"<[^>]+>", " ", text)
    assert "Traceback" not in text
    assert not re.search(r"\b(%s)\b" % codes, text)
