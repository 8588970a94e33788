"""Drive the demo in a real browser (Debian's chromium through the `playwright` package; no browser download): load
the page, generate a sample, resample a part, apply a direction, take a screenshot, and report whether each action
changed the picture. Used by the browser test and by `memorygan demo --screenshot` (the README's screenshot)."""
from __future__ import annotations

import os
import shutil
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


def drive(url: str, screenshot=None, direction: str | None = None, timeout_ms: int = 60000) -> dict:
    """Generate, resample a part, (with `direction`) move its alpha slider; returns the status messages and whether
    each action changed the image; saves a full-page screenshot when asked."""
    why = browser_available()
    if why:
        raise ConfigError(f"cannot drive a browser: {why}")
    from playwright.sync_api import sync_playwright

    steps = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.set_default_timeout(timeout_ms)
            page.goto(url)
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
            if screenshot:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"url": url, "steps": steps, "screenshot": str(screenshot) if screenshot else None}


def drive_drag(url: str, screenshot=None, timeout_ms: int = 60000) -> dict:
    """Generate, open the Drag tab, click a handle and a target on the canvas, run the drag; returns the status
    messages (the click's point count read back from the canvas change) and saves a screenshot when asked."""
    why = browser_available()
    if why:
        raise ConfigError(f"cannot drive a browser: {why}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.set_default_timeout(timeout_ms)
            page.goto(url)
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
            if screenshot:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    result["screenshot"] = str(screenshot) if screenshot else None
    return result
