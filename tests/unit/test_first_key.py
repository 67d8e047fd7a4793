"""The first-start admin key: shown once, after the server answers, framed."""

from __future__ import annotations

import io
import socket

from entrepot.first_key import RULE, FirstKeyNotice
from tests.waiting import wait_until

KEY = "ent_" + "k" * 40


def test_the_key_appears_once_the_port_answers_and_only_once() -> None:
    out = io.StringIO()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        notice = FirstKeyNotice(KEY, "0.0.0.0", port, out)
        thread = notice.when_serving()
        assert out.getvalue() == ""  # nothing listens yet
        listener.listen()
        thread.join(timeout=60)
    assert not thread.is_alive()
    notice.show()  # the server stopping afterwards prints nothing more
    text = out.getvalue()
    assert text.count(KEY) == 1
    assert f"\n    {KEY}\n" in text  # alone on its line, to copy
    assert text.count(RULE) == 2
    assert f"open http://127.0.0.1:{port}/portal/ to create the first account" in text


def test_if_the_server_never_answers_stopping_shows_it() -> None:
    out = io.StringIO()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        notice = FirstKeyNotice(KEY, "127.0.0.1", port, out)
        notice.when_serving()
        notice.show()
        wait_until(lambda: KEY in out.getvalue(), "the key shown")
    assert out.getvalue().count(KEY) == 1
