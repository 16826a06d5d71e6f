"""A real browser for the portal's tests: Debian's chromium driven by Playwright, never a
downloaded browser (`playwright install` is not used anywhere). Every console error and
uncaught page exception is collected, so that a test can fail on any of them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("STRATUM_CHROMIUM", "/usr/bin/chromium")
# Headless flags that work in containers and on air-gapped CI machines.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
VIEWPORT = {"width": 1280, "height": 800}


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@dataclass
class Console:
    """Console errors and page exceptions seen by every page of a browser context."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        page.on(
            "console",
            lambda m: self.errors.append(f"{page.url}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: uncaught {e}"))
        return page

    def take(self) -> list[str]:
        seen, self.errors = self.errors, []
        return seen


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright Browser on the system chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def artifacts_dir(name: str) -> Path:
    """Where a browser test leaves its screenshots: $STRATUM_ARTIFACTS/NAME, else
    artifacts/NAME in the working directory (git-ignored)."""
    root = Path(os.environ.get("STRATUM_ARTIFACTS", "artifacts"))
    path = (root / name).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
