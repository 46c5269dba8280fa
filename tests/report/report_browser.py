"""Open an HTML file in headless Chromium (Debian's `chromium` package) with no network: the page's console
messages (from the browser's log), every request the page itself made (from Chromium's net log), the DOM after
load, and a screenshot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps", "--no-pings",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    # no network at all: every host name fails to resolve and every proxied request goes to a closed port
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
    "--enable-logging=stderr", "--v=0",
]


def find_chromium() -> str | None:
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Page:
    console: list[str]
    """Console lines the page produced (errors, CSP violations, logs): a clean report has none."""
    requests: list[str]
    """URLs the page itself asked for that are not the file itself (data: and file: URLs excepted)."""
    dom: str
    screenshot: Path | None
    log: str


def _page_requests(netlog: Path) -> list[str]:
    """Requests initiated by the page (initiator 'null': the opaque origin of a file:// page). Chromium's own
    background requests carry the initiator 'not an origin' and are not the page's."""
    if not netlog.exists():
        return []
    text = netlog.read_text(encoding="utf-8", errors="replace").rstrip().rstrip(",")
    if not text.endswith("}"):
        text += "]}"  # a log cut short when the browser exits: close it
    try:
        events = json.loads(text).get("events", [])
    except json.JSONDecodeError:
        return []
    urls = set()
    for event in events:
        params = event.get("params") or {}
        url, initiator = params.get("url"), params.get("initiator")
        if url and initiator not in (None, "not an origin") and not str(url).startswith(("file:", "data:")):
            urls.add(str(url))
    return sorted(urls)


def _console(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def open_page(page: Path, workdir: Path, *, screenshot: Path | None = None, size: tuple[int, int] = (1280, 2400),
              chromium: str | None = None, timeout: float = 120) -> Page:
    """Load `page` from disk twice: once for the DOM (and the net log), once for the screenshot."""
    browser = chromium or find_chromium()
    if browser is None:
        raise FileNotFoundError("chromium not found: apt-get install -y chromium")
    url = page.resolve().as_uri()
    env = {**os.environ, "LANG": "C.UTF-8"}
    workdir.mkdir(parents=True, exist_ok=True)
    netlog = workdir / "netlog.json"
    common = [browser, *FLAGS, f"--window-size={size[0]},{size[1]}"]
    dump = subprocess.run([*common, f"--user-data-dir={workdir / 'profile-dom'}", f"--log-net-log={netlog}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=timeout, env=env)
    log = dump.stderr
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = subprocess.run([*common, f"--user-data-dir={workdir / 'profile-shot'}", f"--screenshot={screenshot.resolve()}", url],
                              capture_output=True, text=True, timeout=timeout, env=env)
        log += shot.stderr
    return Page(console=_console(log), requests=_page_requests(netlog), dom=dump.stdout, screenshot=screenshot, log=log)
