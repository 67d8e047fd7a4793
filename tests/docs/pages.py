"""The documentation's examples, read out of its pages: fenced blocks and their tags.

A fenced block (```` ```sh ````) is one example. Its info string says what it is: `sh`,
`bash`, `shell` and `console` blocks are shell a reader pastes; `python` blocks are
programs; anything else (`json`, `text`, `http`, `yaml`, untagged) is shown, never run.

An HTML comment right above a block (blank lines between them allowed) tags it:

``<!-- docs-test: skip (REASON) -->``
    not run: it cannot run in a test (it starts a server in the foreground, needs a
    service the test does not have...). The reason is required.
``<!-- docs-test: given -->``
    the block only sets what a reader copies from the ``make run`` output (``export
    E=... TOKEN=...``); the test provides those values instead (runner.py), so it is
    checked to assign nothing else, and not run.
``<!-- docs-test: problems (REASON) -->``
    run; its output may contain problem documents (it shows an error on purpose).
    Other blocks fail the test if they print one: an example that silently answers
    an error is an example that is no longer true.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"

SHELL = frozenset({"sh", "bash", "shell", "console"})
# What the test provides, as the quickstart has a reader set it from `make run`'s output.
GIVEN = frozenset({"E", "TOKEN"})

# The pages a newcomer reads one after the other, in one shell, against one server:
# variables set on one page are used on the next ones (README.md's "Documentation").
READING_ORDER = (
    "README.md",
    "docs/quickstart.md",
    "docs/datasets-and-records.md",
    "docs/bulk.md",
    "docs/access.md",
    "docs/portal.md",
    "docs/limits.md",
    "docs/sync.md",
    "docs/webhooks.md",
    "docs/jetstream.md",
    "docs/exchange.md",
    "docs/errors.md",
    "docs/operations.md",
    "docs/ha.md",
    "docs/scaling.md",
    "docs/architecture.md",
)
# Pages that say they start from nothing but the quickstart's E and TOKEN, each run
# alone against a server of its own: by tests/cli/test_docs.py and tests/sdk/test_docs.py.
SELF_CONTAINED = ("docs/cli.md", "docs/sdk.md")
# An operator's page, whose examples run from the checkout's root (kubectl kustomize of
# its overlays, docker-compose config): by tests/deploy/test_docs.py.
FROM_THE_CHECKOUT = ("docs/deploy.md",)

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_TAG = re.compile(
    r"^<!--\s*docs-test:\s*(?P<kind>skip|given|problems)\s*(?:\((?P<reason>[^)]*)\))?\s*-->$"
)
_ANY_TAG = re.compile(r"<!--\s*docs-test\b")


@dataclass(frozen=True, slots=True)
class Block:
    page: str  # relative to the repository, as in READING_ORDER
    number: int  # among the page's runnable blocks of its kind, from 1
    line: int  # of its opening fence, from 1
    lang: str
    code: str
    tag: str | None = None  # skip, given or problems
    reason: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page} block {self.number} (line {self.line})"


class PageError(AssertionError):
    """A page whose blocks or tags break the rules above."""


def blocks(page: str) -> list[Block]:
    """The shell and python blocks of ``page`` (a path relative to the repository), in order."""
    return parse(page, (ROOT / page).read_text())


def parse(page: str, text: str) -> list[Block]:
    """The shell and python blocks of a page's ``text``, with their tags, in order."""
    lines = text.splitlines()
    found: list[Block] = []
    counts: dict[str, int] = {}
    pending: tuple[str, str | None, int] | None = None  # a tag waiting for its block
    i = 0
    while i < len(lines):
        line = lines[i]
        opening = _FENCE.match(line)
        if opening is None:
            stripped = line.strip()
            if _ANY_TAG.search(stripped):
                tag = _TAG.match(stripped)
                if tag is None:
                    raise PageError(f"{page}:{i + 1}: a docs-test tag it cannot read: {stripped}")
                kind, reason = tag["kind"], tag["reason"]
                if kind in ("skip", "problems") and not (reason and reason.strip()):
                    raise PageError(f"{page}:{i + 1}: docs-test: {kind} needs a (reason)")
                pending = (kind, reason.strip() if reason else None, i + 1)
            elif stripped and pending is not None:
                raise PageError(f"{page}:{pending[2]}: a docs-test tag not right above a block")
            i += 1
            continue
        fence, lang = opening["fence"], opening["info"].strip().split(" ")[0].lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(opening["indent"]) :])
            i += 1
        if i == len(lines):
            raise PageError(f"{page}:{start + 1}: a fenced block that never ends")
        i += 1
        kind = "shell" if lang in SHELL else lang
        if kind not in ("shell", "python"):
            if pending is not None:
                raise PageError(f"{page}:{pending[2]}: a docs-test tag above a block not run")
            continue
        counts[kind] = counts.get(kind, 0) + 1
        tag, reason = (pending[0], pending[1]) if pending else (None, None)
        pending = None
        code = "\n".join(body) + "\n"
        found.append(Block(page, counts[kind], start + 1, kind, code, tag, reason))
    if pending is not None:
        raise PageError(f"{page}:{pending[2]}: a docs-test tag not right above a block")
    return found


def check_given(block: Block) -> None:
    """A ``given`` block assigns the provided variables and nothing else."""
    for line in block.code.splitlines():
        words = re.sub(r"(^|\s)#.*$", "", line).split()
        if not words:
            continue
        names = [word.split("=", 1)[0] for word in words[1:]]
        if (
            words[0] != "export"
            or not names
            or any("=" not in word for word in words[1:])
            or not set(names) <= GIVEN
        ):
            raise PageError(
                f"{block.where}: a given block may only export {', '.join(sorted(GIVEN))}:"
                f" {line.strip()}"
            )
