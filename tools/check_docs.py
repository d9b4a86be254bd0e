"""Open the built documentation in headless Chromium and check what a reader sees.

Usage (after ``make docs``)::

    .venv/bin/python tools/check_docs.py [--html docs/_build/html] [--out docs/_build/screenshots]

For each checked page the script loads the HTML file in Debian's ``chromium`` (headless, no
network, a throw-away profile), driven through the DevTools protocol over a pipe (standard
library only), and

* fails on JavaScript exceptions, ``console.error`` messages and resources that fail to load;
* checks that the images are loaded (``naturalWidth > 0``): the gallery index shows one thumbnail
  per tutorial, and the tutorial-07 page shows its five cortical figures;
* saves a full-page screenshot (PNG) of the page in ``--out``.

Exit status 0 when every check passes; the problems are printed otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
)


def find_chromium() -> str:
    """Path of the Chromium executable (``$CHROMIUM`` or the first one on ``PATH``)."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError("Chromium not found: install Debian's 'chromium' package "
                            "(apt-get install chromium) or set CHROMIUM=/path/to/chromium")


class Browser:
    """Minimal DevTools-protocol client over ``--remote-debugging-pipe`` (fds 3 and 4)."""

    def __init__(self, executable: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="lameg_chromium_")
        to_child_r, self._to_child_w = os.pipe()
        self._from_child_r, from_child_w = os.pipe()

        def wire_fds():  # in the child: fd 3 = commands in, fd 4 = replies out
            a, b = os.dup(to_child_r), os.dup(from_child_w)  # copies, so 3/4 can be reused
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds, close_fds=False,  # fds 3/4 are made after close_fds runs
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    # -- protocol --------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_child_r], [], [], left)
            if ready:
                chunk = os.read(self._from_child_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send a command and wait for its result (events are kept in ``self.events``)."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float | None = None) -> dict:
        """Wait for an event of a session (looking at already received events first)."""
        for ev in self.events:
            if ev.get("method") == method and ev.get("sessionId") == session:
                return ev
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            ev = self._read_message(deadline)
            if "method" in ev:
                self.events.append(ev)
                if ev["method"] == method and ev.get("sessionId") == session:
                    return ev

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # the browser may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child_w)
        os.close(self._from_child_r)
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- pages -------------------------------------------------------------------------------
    def visit(self, url: str, screenshot: Path, width: int = 1280, height: int = 900) -> dict:
        """Load ``url``; return problems, images and the page title; write a screenshot."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target,
                                                      "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        start = len(self.events)
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        time.sleep(0.5)  # let late scripts run and log
        js = ("JSON.stringify({title: document.title, images: Array.from(document.images).map("
              "i => ({src: i.getAttribute('src'), cls: i.className, ok: i.complete && "
              "i.naturalWidth > 0, w: i.naturalWidth}))})")
        info = json.loads(self.send("Runtime.evaluate", {"expression": js, "returnByValue": True},
                                    session=session)["result"]["value"])
        shot = self.send("Page.captureScreenshot",
                         {"format": "png", "captureBeyondViewport": True}, session=session)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        problems = []
        for ev in self.events[start:]:
            if ev.get("sessionId") != session:
                continue
            p = ev.get("params", {})
            if ev["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                problems.append("exception: " + d.get("exception", {}).get(
                    "description", d.get("text", "")))
            elif ev["method"] == "Runtime.consoleAPICalled" and p.get("type") == "error":
                problems.append("console.error: " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                problems.append(f"log error: {e.get('text')} {e.get('url', '')}")
            elif ev["method"] == "Network.loadingFailed" and not p.get("canceled"):
                problems.append(f"failed to load: {p.get('errorText')} ({p.get('type')})")
        self.send("Target.closeTarget", {"targetId": target})
        info["problems"] = problems
        return info


def check(html_dir: Path, out_dir: Path, chromium: str | None = None) -> list[str]:
    """Check the built site; returns the list of failures (empty = all good)."""
    html_dir = html_dir.resolve()
    tutorials = sorted(p.stem for p in (REPO / "tutorials").glob("tutorial_*.py"))
    pages = {
        "index": html_dir / "index.html",
        "gallery": html_dir / "auto_tutorials" / "index.html",
        "tutorial_07": html_dir / "auto_tutorials" / "tutorial_07_anatomical_predictors.html",
        "api": html_dir / "api.html",
        "differences": html_dir / "differences.html",
    }
    failures = [f"{name}: {path} does not exist (run make docs)"
                for name, path in pages.items() if not path.is_file()]
    if failures:
        return failures
    browser = Browser(chromium or find_chromium())
    try:
        results = {name: browser.visit(path.as_uri(), out_dir / f"{name}.png")
                   for name, path in pages.items()}
    finally:
        browser.close()
    for name, res in results.items():
        failures += [f"{name}: {p}" for p in res["problems"]]
        failures += [f"{name}: image not shown: {img['src']}" for img in res["images"]
                     if not img["ok"]]
    thumbs = [img for img in results["gallery"]["images"] if "sphx_glr_tutorial_" in
              (img["src"] or "") and "thumb" in img["src"]]
    shown = {t for t in tutorials for img in thumbs if t in img["src"] and img["ok"]}
    failures += [f"gallery: no thumbnail for {t}" for t in tutorials if t not in shown]
    figs = [img for img in results["tutorial_07"]["images"]
            if "sphx_glr_tutorial_07" in (img["src"] or "") and img["ok"] and img["w"] >= 300]
    if len(figs) < 5:
        failures.append(f"tutorial_07: {len(figs)} figures shown, expected the 5 cortical maps")
    for name, res in results.items():
        print(f"{name:12s} {res['title']!r}: {len(res['images'])} images, "
              f"{len(res['problems'])} problems -> {out_dir / (name + '.png')}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=REPO / "docs" / "_build" / "html")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "_build" / "screenshots")
    parser.add_argument("--chromium", default=None, help="Chromium executable")
    args = parser.parse_args(argv)
    failures = check(args.html, args.out, args.chromium)
    for f in failures:
        print("FAIL", f, file=sys.stderr)
    print("docs check: " + ("OK" if not failures else f"{len(failures)} problem(s)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
