"""The one-time platform-admin key, shown where a person starting ``make run`` sees it.

It is printed once the server answers on its port, so it comes after the install's
and the server's start-up lines instead of scrolling away among them, framed so that
it stands out; and if the server never comes up, it is printed as it stops, never
lost (only its hash is stored).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from typing import TextIO

RULE = "=" * 76
WAIT_SECONDS = 120.0


def framed(key: str, portal: str | None = None) -> str:
    people = f" People: open {portal} to create the first account there.\n" if portal else ""
    return (
        f"\n{RULE}\n"
        " First start: a platform-admin API key was created. It is shown only now:\n\n"
        f"    {key}\n\n"
        " Store it safely; use it as 'Authorization: Bearer <key>'.\n"
        f"{people}"
        f"{RULE}\n"
    )


def _reachable(host: str) -> str:
    """Where to knock for a server bound to ``host`` (a wildcard means this machine)."""
    wildcards = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 (read, not bound)
    return wildcards.get(host, host)


class FirstKeyNotice:
    """Shows ``key`` once: when ``host:port`` accepts a connection, or at :meth:`show`."""

    def __init__(self, key: str, host: str, port: int, out: TextIO | None = None) -> None:
        self._address = (_reachable(host), port)
        shown = self._address[0]
        shown = f"[{shown}]" if ":" in shown else shown
        self._text = framed(key, f"http://{shown}:{port}/portal/")
        self._out = sys.stderr if out is None else out
        self._lock = threading.Lock()
        self._shown = False

    def show(self) -> None:
        with self._lock:
            if not self._shown:
                self._shown = True
                self._out.write(self._text)
                self._out.flush()

    def when_serving(self) -> threading.Thread:
        """Knock on the port in the background; show the key once it answers."""
        thread = threading.Thread(target=self._wait, name="first-key", daemon=True)
        thread.start()
        return thread

    def _wait(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and not self._shown:
            try:
                with socket.create_connection(self._address, timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        self.show()
