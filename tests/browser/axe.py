"""axe-core (vendored: tests/browser/vendor) run on a page, failing on serious or
critical violations.

The portal's CSP allows scripts from its own origin only, so axe is not injected as
inline script: the context answers one same-origin URL with the vendored file, and
the page loads it as it loads its own scripts. The CSP stays as it is served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_PATH = "/portal/static/__axe-under-test.js"
SERIOUS = ("serious", "critical")

RUN = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
  }));
}
"""


async def serve_axe(context: Any) -> None:
    """Answer the axe URL on every origin of ``context`` with the vendored file."""
    body = AXE.read_bytes()

    async def fulfil(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/javascript", body=body)

    await context.route(f"**{AXE_PATH}", fulfil)


async def violations(page: Any) -> list[dict[str, Any]]:
    """The page's serious and critical violations (axe loaded on first use)."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.add_script_tag(url=AXE_PATH)
    found: list[dict[str, Any]] = await page.evaluate(RUN)
    return [v for v in found if v["impact"] in SERIOUS]


async def assert_accessible(page: Any) -> None:
    bad = await violations(page)
    assert bad == [], f"axe on {page.url}: {bad}"
