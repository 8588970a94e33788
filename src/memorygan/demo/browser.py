"""Drive the demo in a real browser (Debian's chromium through the `playwright` package; no browser download): load
the page, generate a sample, resample a part, apply a direction, take a screenshot, and report whether each action
changed the picture. Used by the browser test and by `memorygan demo --screenshot` (the README's screenshot)."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from memorygan.errors import ConfigError

CHROMIUM = os.environ.get("MEMORYGAN_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]


def browser_available() -> str | None:
    """None when a browser test can run, else why not."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium, or set MEMORYGAN_CHROMIUM)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; no browser download needed)"
    return None


@contextmanager
def open_page(url: str, height: int, timeout_ms: int):
    """A page of the demo at `url` in headless chromium (1200 x `height`), closed on the way out."""
    why = browser_available()
    if why:
        raise ConfigError(f"cannot drive a browser: {why}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": height})
            page.set_default_timeout(timeout_ms)
            page.goto(url)
            yield page
        finally:
            browser.close()


def _screenshot(page, screenshot) -> None:
    if screenshot:
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)


def drive(url: str, screenshot=None, direction: str | None = None, timeout_ms: int = 60000) -> dict:
    """Generate, resample a part, (with `direction`) move its alpha slider; returns the status messages and whether
    each action changed the image; saves a full-page screenshot when asked."""
    steps = []
    with open_page(url, 1000, timeout_ms) as page:
        status = page.locator("#status textarea")

        def panel_bytes() -> bytes:
            src = page.locator("#panel img").first.get_attribute("src")
            return page.request.get(src).body() if src and not src.startswith("data:") else (src or "").encode()

        def act(name, do, expect):
            before = panel_bytes() if page.locator("#panel img").count() else b""
            do()
            page.wait_for_function("([sel, text]) => document.querySelector(sel)?.value.includes(text)",
                                   arg=["#status textarea", expect])
            page.wait_for_function("() => !!document.querySelector('#panel img')?.getAttribute('src')")
            after = panel_bytes()
            steps.append({"action": name, "status": status.input_value(), "changed": after != before})

        act("generate", lambda: page.click("#generate button, button#generate"), "seed")
        page.get_by_role("tab", name="Parts", exact=True).click()
        act("resample part", lambda: page.click("#resample button, button#resample"), "codes of seed")
        if direction:
            page.get_by_role("tab", name="Directions", exact=True).click()
            box = page.locator("#alpha input[type=number]")

            def move():
                box.fill("0.5")
                box.press("Enter")
            act("apply direction", move, "alpha")
        _screenshot(page, screenshot)
    return {"url": url, "steps": steps, "screenshot": str(screenshot) if screenshot else None}


def drive_drag(url: str, screenshot=None, timeout_ms: int = 60000) -> dict:
    """Generate, open the Drag tab, click a handle and a target on the canvas, run the drag; returns the status
    messages (the click's point count read back from the canvas change) and saves a screenshot when asked."""
    with open_page(url, 1400, timeout_ms) as page:
        status = page.locator("#status textarea")
        page.click("#generate button, button#generate")
        page.wait_for_function("() => document.querySelector('#status textarea')?.value.includes('seed')")
        page.get_by_role("tab", name="Drag", exact=True).click()
        page.click("#drag-show button, button#drag-show")
        canvas = page.locator("#drag-canvas img").first
        canvas.wait_for()
        # the picture must have loaded and stopped moving before a click can land on it
        page.wait_for_function("() => { const i = document.querySelector('#drag-canvas img');"
                               " return i && i.complete && i.naturalWidth > 0; }")
        page.wait_for_timeout(500)

        def src() -> str:
            return canvas.get_attribute("src") or ""
        shown = src()
        clicks = []
        for fx, fy in ((0.45, 0.5), (0.6, 0.5)):                  # handle, then its target, right of it
            before, changed = src(), False
            for _ in range(3):                                   # a click during a re-layout can miss
                box = canvas.bounding_box()
                page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
                try:
                    page.wait_for_function(
                        "([sel, old]) => document.querySelector(sel)?.getAttribute('src') !== old",
                        arg=["#drag-canvas img", before], timeout=max(timeout_ms // 3, 1000))
                    changed = True
                    break
                except Exception:                                # playwright's TimeoutError: click again
                    continue
            clicks.append(changed and src() != before)
            if not changed:
                break
        if len(clicks) == 2 and all(clicks):                     # else report which click was not drawn
            page.click("#drag-run button, button#drag-run")
            page.wait_for_function(
                "() => document.querySelector('#status textarea')?.value.startsWith('drag (')",
                timeout=timeout_ms * 3)
        result = {"url": url, "clicks_drawn": clicks, "canvas_shown": bool(shown),
                  "status": status.input_value()}
        _screenshot(page, screenshot)
    result["screenshot"] = str(screenshot) if screenshot else None
    return result


def _set_slider(page, elem_id: str, value: str) -> None:
    """Type `value` into a slider's number box and wait until the slider itself shows it (the box's value reaches
    the component on Enter / blur; a click sent before that would carry the old value)."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Enter")
    box.blur()
    page.wait_for_function("([sel, v]) => document.querySelector(sel)?.value === v",
                           arg=[f"#{elem_id} input[type=range]", value])


def drive_edits(url: str, upload, screenshot=None, timeout_ms: int = 120000) -> dict:
    """The editing panels as a user works them: generate, run a text edit (5 steps), paint a stroke on the current
    image in the Region edit tab's ImageEditor and edit that region (no parts chosen: the painting alone is the
    region), then upload the image file `upload` in the Invert tab and invert it (the slider's fewest steps).
    Returns each action's status message and whether the panel changed; saves a screenshot when asked."""
    steps = []
    with open_page(url, 1400, timeout_ms) as page:
        status = page.locator("#status textarea")

        def panel_src() -> str:
            return page.locator("#panel img").first.get_attribute("src") or ""

        def act(name, do, expect):
            before = panel_src() if page.locator("#panel img").count() else ""
            old = status.input_value()
            do()
            page.wait_for_function("([sel, text, old]) => { const v = document.querySelector(sel)?.value || '';"
                                   " return v !== old && v.includes(text); }",
                                   arg=["#status textarea", expect, old])
            page.wait_for_function("(old) => { const s = document.querySelector('#panel img')?.getAttribute('src');"
                                   " return !!s && s !== old; }", arg=before)
            steps.append({"action": name, "status": status.input_value(), "changed": panel_src() != before})

        act("generate", lambda: page.click("#generate button, button#generate"), "seed")
        # text edit: 5 steps (the slider's least)
        page.get_by_role("tab", name="Text edit", exact=True).click()
        _set_slider(page, "text-steps", "5")
        act("text edit", lambda: page.click("#text-edit button, button#text-edit"), "text edit")
        # region edit: put the current image in the editor, paint a stroke across its middle
        page.get_by_role("tab", name="Region edit", exact=True).click()
        page.click("#paint-current button, button#paint-current")
        canvas = page.locator("#painter canvas").first
        canvas.wait_for()
        page.wait_for_timeout(1000)
        brush = page.locator("#painter button[aria-label='Brush'], #painter button[title='Brush'], "
                             "#painter button[aria-label='Draw'], #painter button[title='Draw']")
        if brush.count():
            brush.first.click()
        bb = canvas.bounding_box()
        page.mouse.move(bb["x"] + 0.35 * bb["width"], bb["y"] + 0.3 * bb["height"])
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(bb["x"] + (0.35 + 0.03 * i) * bb["width"], bb["y"] + 0.3 * bb["height"], steps=2)
        page.mouse.up()
        page.wait_for_timeout(500)
        act("region edit", lambda: page.click("#region-edit button, button#region-edit"), "region edit")
        # invert an uploaded file
        page.get_by_role("tab", name="Invert", exact=True).click()
        page.locator("#upload input[type=file]").set_input_files(str(upload))
        page.wait_for_function("() => !!document.querySelector('#upload img')?.getAttribute('src')")
        _set_slider(page, "invert-steps", page.locator("#invert-steps input[type=number]").get_attribute("min") or "20")
        act("invert", lambda: page.click("#invert button, button#invert"), "inverted image")
        _screenshot(page, screenshot)
    return {"url": url, "steps": steps, "screenshot": str(screenshot) if screenshot else None}
