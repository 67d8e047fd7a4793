"""uvicorn's httptools protocol, with a way for the app to reset a connection at once.

When the app cuts an answer short (a client too slow for an export), the
server closes the connection, but a close waits for the send buffers to
drain, and a client that does not read never drains them: the connection
would linger, buffers and all, until that client reads or leaves. The app
is given a reset (``scope["extensions"]["entrepot.abort"]["abort"]``, in the
manner of ASGI extensions) that drops the queued bytes and sends RST, as
nginx's ``reset_timedout_connection`` does.
"""

from __future__ import annotations

import contextlib
import socket
import struct

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ABORT_EXTENSION = "entrepot.abort"
_LINGER_OFF = struct.pack("ii", 1, 0)  # l_onoff=1, l_linger=0: close() resets


class AbortableHttpToolsProtocol(HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions = self.scope.setdefault("extensions", {})
        extensions[ABORT_EXTENSION] = {"abort": self._reset}

    def _reset(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already gone: nothing left to reset
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_OFF)
        self.transport.abort()
