"""The reviewers' console in a real headless Chromium (Debian's), driven by Playwright.

Run by tests/console.rs against a local stack it has filled with flagged calls:

    console.py <base url> <reviewer token> <flag id> <its turn> <screenshot dir>

Opens the console, sees the queue, opens the flagged call, sees the flagged turn highlighted
with its rule, moves with j/k, dismisses the flag with a note, and sees it leave the open queue;
then does the same checks at a phone's width. Exits non-zero (with the reason) on any failure.
"""

import os
import sys

from playwright.sync_api import expect, sync_playwright

base, token, flag_id, turn, shots = sys.argv[1:6]
chromium = os.environ.get("FRONTDESK_CHROMIUM", "/usr/bin/chromium")
expect.set_options(timeout=10_000)

with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync"],
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # Signed in by the address, which the page then clears.
    page.goto(f"{base}/qa#token={token}")
    queue = page.locator("#queue li")
    expect(queue).to_have_count(2)
    assert "#token" not in page.url, page.url
    item = page.locator(f'#queue li[data-flag="{flag_id}"]')
    expect(item).to_contain_text("asked-date-of-birth")

    # j/k move the selection.
    expect(queue.nth(0)).to_have_class("selected")
    page.keyboard.press("j")
    expect(queue.nth(1)).to_have_class("selected")
    page.keyboard.press("k")
    expect(queue.nth(0)).to_have_class("selected")

    # The call: the flagged turn highlighted, with its rule.
    item.click()
    flagged = page.locator(".turn.flagged")
    expect(flagged).to_have_count(1)
    expect(flagged).to_have_attribute("data-turn", turn)
    expect(flagged).to_contain_text("date of birth")
    expect(flagged.locator(".rule")).to_contain_text("asked-date-of-birth")
    page.screenshot(path=os.path.join(shots, "console-call.png"), full_page=True)

    # Dismissed with a note: recorded, and gone from the open queue.
    card = page.locator(f'.flag[data-flag="{flag_id}"]')
    card.locator("textarea").fill("The caller volunteered it; the agent did not ask.")
    card.get_by_role("button", name="Dismiss (d)").click()
    expect(card).to_contain_text("dismissed by reviewer@localhost")
    page.keyboard.press("Escape")
    expect(queue).to_have_count(1)
    expect(page.locator(f'#queue li[data-flag="{flag_id}"]')).to_have_count(0)
    page.select_option("#status", "dismissed")
    expect(page.locator(f'#queue li[data-flag="{flag_id}"]')).to_have_count(1)
    page.select_option("#status", "open")
    expect(queue).to_have_count(1)
    page.screenshot(path=os.path.join(shots, "console-queue.png"), full_page=True)

    # A phone's width: the queue and a call still read, nothing runs off the side.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(queue).to_have_count(1)
    queue.nth(0).click()
    expect(page.locator(".turn.flagged")).to_have_count(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page is {width}px wide on a 390px screen"
    page.screenshot(path=os.path.join(shots, "console-phone.png"), full_page=True)

    # Signed out, the page asks for a token again and shows no data.
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#call-view")).to_be_hidden()

    assert not errors, f"errors in the page: {errors}"
    browser.close()

print("console: queue, call, highlight, j/k, dismiss with note, phone width: ok")
