"""Where the process is in its life (serving, draining, stopping), and the parts that
report a degraded state to readiness without failing it.

A replica stops in three steps a load balancer can trust (ops/draining.py starts
them on SIGTERM):

1. **draining**: readiness answers 503 at once, while every request is still
   served, for ``ENTREPOT_DRAIN_SECONDS``, so the balancer's health checks see
   it and stop sending new requests here;
2. **stopping**: long polls answer what they have and event streams end (their
   clients reconnect, to another replica), so nothing in flight waits for a
   change that may be minutes away; then the server stops accepting and
   finishes the requests in flight (``ENTREPOT_SHUTDOWN_TIMEOUT_SECONDS``);
3. the app's shutdown: background work ends, claimed webhook deliveries are
   handed back, pools close.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Lifecycle:
    """``draining`` fails readiness; ``stopping`` ends the requests that wait (long
    polls, event streams), which ``on_stop`` callbacks wake."""

    draining: bool = False
    stopping: bool = False
    degraded: dict[str, Callable[[], str]] = field(default_factory=dict)
    _on_stop: list[Callable[[], None]] = field(default_factory=list)

    def report(self, name: str, state: Callable[[], str]) -> None:
        """Show ``state()`` under ``name`` in every readiness answer (a stuck delivery
        backlog degrades readiness, never fails it)."""
        self.degraded[name] = state

    def on_stop(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` when stopping begins (the change waiter wakes its waiters)."""
        self._on_stop.append(wake)

    def begin_drain(self) -> None:
        self.draining = True

    def stop_serving(self) -> None:
        """Step 2: end what waits. Idempotent."""
        self.draining = True
        if self.stopping:
            return
        self.stopping = True
        for wake in self._on_stop:
            wake()
