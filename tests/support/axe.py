"""axe-core run in a Playwright page: the accessibility checks of the console's pages.

scripts/install-axe.sh (run by `make test`) puts the pinned, integrity-checked axe.min.js
in a cache outside the repository. The console's CSP forbids inline scripts, so the script
is evaluated through the DevTools protocol (page.evaluate), which CSP does not govern; the
console's own headers stay as they are served.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent.parent
INSTALL = ROOT / "scripts" / "install-axe.sh"
# The bar: nothing critical or serious; moderate and minor findings are reported
# by axe but are not failures.
BLOCKING = ("critical", "serious")


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    help_url: str
    targets: tuple[str, ...]

    def describe(self) -> str:
        where = ", ".join(self.targets[:5]) + (" …" if len(self.targets) > 5 else "")
        return f"{self.rule} [{self.impact}] {self.help} — {where} — {self.help_url}"


@cache
def axe_source() -> str | None:
    """axe.min.js, installed if missing; None when it cannot be had (no npm, no network)."""
    try:
        out = subprocess.run(
            ["bash", str(INSTALL)], capture_output=True, text=True, check=True, timeout=300
        )
    except (subprocess.SubprocessError, OSError):
        return None
    path = Path(os.environ.get("STOCKYARD_AXE_JS") or out.stdout.strip().splitlines()[-1])
    return path.read_text(encoding="utf-8") if path.is_file() else None


def violations(page: Page, impacts: tuple[str, ...] = BLOCKING) -> list[Violation]:
    """axe's violations on the page as it is now, of the given impacts."""
    source = axe_source()
    if source is None:
        raise RuntimeError("axe-core is missing: bash scripts/install-axe.sh")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source)
    result: dict[str, Any] = page.evaluate(
        """async () => await axe.run(document, {
            resultTypes: ['violations'],
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                             'wcag22aa', 'best-practice']},
        })"""
    )
    found = []
    for v in result["violations"]:
        if v.get("impact") not in impacts:
            continue
        targets = tuple(" ".join(map(str, node["target"])) for node in v["nodes"])
        found.append(Violation(v["id"], v["impact"], v["help"], v["helpUrl"], targets))
    return found


def report(where: str, found: list[Violation]) -> str:
    """A failure message: one line per rule, with its targets and where to read about it."""
    lines = [f"{where}: {len(found)} axe violation(s)"]
    lines += ["  " + v.describe() for v in found]
    return "\n".join(lines)
