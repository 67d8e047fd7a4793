"""What the docs runner demands of a page, and what it says when a page breaks it.

The shell tests run real bash sessions; none needs a server (the blocks call none), so
the server is only the URL and key a block would be given.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.docs.pages import Block, PageError, check_given, parse
from tests.docs.runner import FirstStart, run_shell

NO_SERVER = FirstStart("http://127.0.0.1:9", "ent_not-a-real-key", Path("/dev/null"))

PAGE = """# A page

```sh
echo one
```

<!-- docs-test: skip (it serves in the foreground) -->

```bash
make run
```

```json
{"not": "run"}
```

<!-- docs-test: given -->
```sh
export E=http://127.0.0.1:8000 TOKEN=ent_...   # the key it printed
```

```python
print("a program")
```

<!-- docs-test: problems (a 404 on purpose) -->
```console
curl -s $E/v1/nothing
```
"""


def shell(text: str) -> list[Block]:
    return [block for block in parse("docs/page.md", text) if block.lang == "shell"]


def test_shell_and_python_blocks_are_read_with_their_tags_and_the_rest_is_not() -> None:
    found = parse("docs/page.md", PAGE)
    assert [(b.lang, b.number, b.line, b.tag, b.reason) for b in found] == [
        ("shell", 1, 3, None, None),
        ("shell", 2, 9, "skip", "it serves in the foreground"),
        ("shell", 3, 18, "given", None),
        ("python", 1, 22, None, None),
        ("shell", 4, 27, "problems", "a 404 on purpose"),
    ]
    assert found[0].code == "echo one\n"
    assert found[0].where == "docs/page.md block 1 (line 3)"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("<!-- docs-test: skip -->\n```sh\nmake run\n```\n", "needs a (reason)"),
        ("<!-- docs-test: skip () -->\n```sh\nmake run\n```\n", "needs a (reason)"),
        ("<!-- docs-test: problems -->\n```sh\ncurl x\n```\n", "needs a (reason)"),
        ("<!-- docs-test: ignore (why) -->\n```sh\nx\n```\n", "cannot read"),
        ("<!-- docs-test: skip (why) -->\nSome text.\n\n```sh\nx\n```\n", "not right above"),
        ("<!-- docs-test: skip (why) -->\n```json\n{}\n```\n", "above a block not run"),
        ("```sh\necho never closed\n", "never ends"),
        ("Text.\n\n<!-- docs-test: skip (why) -->\n", "not right above"),
    ],
)
def test_a_tag_it_cannot_use_is_an_error_naming_the_line(text: str, says: str) -> None:
    with pytest.raises(PageError, match=r"docs/page\.md:") as raised:
        parse("docs/page.md", text)
    assert says in str(raised.value)


@pytest.mark.parametrize(
    "code",
    [
        "export E=http://127.0.0.1:8000 TOKEN=ent_...\n",
        "export E=http://127.0.0.1:8000\nexport TOKEN=ent_...   # printed above\n",
    ],
)
def test_a_given_block_sets_e_and_token(code: str) -> None:
    check_given(Block("docs/page.md", 1, 1, "shell", code, "given"))


@pytest.mark.parametrize(
    "code",
    [
        "export E=http://127.0.0.1:8000 ADMIN=ent_...\n",
        "E=http://127.0.0.1:8000\n",
        "export TOKEN=ent_...\ncurl $E/v1/me\n",
        "export TOKEN\n",
    ],
)
def test_a_given_block_sets_nothing_else(code: str) -> None:
    with pytest.raises(PageError, match="may only export E, TOKEN"):
        check_given(Block("docs/page.md", 1, 1, "shell", code, "given"))


def test_blocks_share_one_shell_and_given_and_skipped_ones_do_not_run(tmp_path: Path) -> None:
    ran = run_shell(
        shell(
            "```sh\nNAME=first; cd sub 2>/dev/null || mkdir sub\n```\n"
            "<!-- docs-test: given -->\n```sh\nexport E=http://127.0.0.1:8000\n```\n"
            "<!-- docs-test: skip (it would fail) -->\n```sh\nfalse\n```\n"
            '```sh\necho "$NAME in $E"\nread -r line || echo "stdin is empty"\n```\n'
        ),
        NO_SERVER,
        tmp_path,
    )
    assert [done.block.number for done in ran] == [1, 4]
    assert ran[1].output == "first in http://127.0.0.1:9\nstdin is empty\n"


def test_the_virtualenv_is_on_path_only_once_activated(tmp_path: Path) -> None:
    ran = run_shell(
        shell(
            "```sh\ncommand -v entrepot || echo none\n```\n"
            "```sh\n. .venv/bin/activate\ncommand -v entrepot\n```\n"
        ),
        NO_SERVER,
        tmp_path,
    )
    assert ran[0].output == "none\n"
    assert ran[1].output.strip().endswith("/bin/entrepot")


def test_a_failing_block_is_named_with_its_page_line_and_output(tmp_path: Path) -> None:
    with pytest.raises(AssertionError) as raised:
        run_shell(
            shell(
                "```sh\necho before\n```\n"
                "Text.\n\n```sh\necho 'about to fail'\nls /no/such/place\necho never\n```\n"
            ),
            NO_SERVER,
            tmp_path,
        )
    message = str(raised.value)
    assert message.startswith("docs/page.md block 2 (line 6) failed (the shell exited, status 2)")
    assert "before\nabout to fail\n" in message
    assert "/no/such/place" in message.split("--- output:")[1]
    assert "never\n" not in message.split("--- output:")[1]


def test_an_unset_variable_or_a_failure_inside_a_pipe_stops_the_shell(tmp_path: Path) -> None:
    for code in ('echo "$UNSET_VARIABLE"', "false | cat"):
        with pytest.raises(AssertionError, match=r"block 1 .* failed"):
            run_shell(shell(f"```sh\n{code}\n```\n"), NO_SERVER, tmp_path / code[:5])


def test_a_block_printing_a_problem_document_fails_unless_tagged(tmp_path: Path) -> None:
    problem = 'echo \'{"type": "https://entrepot.dev/problems/not-found", "status": 404}\''
    with pytest.raises(AssertionError, match=r"block 1 .* answered a problem document"):
        run_shell(shell(f"```sh\n{problem}\n```\n"), NO_SERVER, tmp_path / "untagged")
    tagged = f"<!-- docs-test: problems (on purpose) -->\n```sh\n{problem}\n```\n"
    assert run_shell(shell(tagged), NO_SERVER, tmp_path / "tagged")
    with pytest.raises(AssertionError, match="tagged `problems` but answered none"):
        run_shell(
            shell("<!-- docs-test: problems (on purpose) -->\n```sh\necho fine\n```\n"),
            NO_SERVER,
            tmp_path / "stale",
        )


def test_a_block_may_not_print_the_admin_key(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="printed the platform-admin key"):
        run_shell(shell('```sh\necho "$TOKEN"\n```\n'), NO_SERVER, tmp_path)


def test_a_block_that_does_not_end_is_stopped_and_named(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"block 2 \(line 4\) still running after 1 s"):
        run_shell(
            shell("```sh\necho ok\n```\n```sh\nsleep 600 &\nwait\n```\n"),
            NO_SERVER,
            tmp_path,
            block_seconds=1,
        )
    assert time.monotonic() - started < 30  # the session and its background jobs are ended
