"""Where the process is in its life (serving, or draining before it stops), and the
parts that report a degraded state to readiness without failing it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Lifecycle:
    """``draining`` is set when shutdown begins: readiness fails first, so a load
    balancer stops sending new requests while the ones in flight finish."""

    draining: bool = False
    degraded: dict[str, Callable[[], str]] = field(default_factory=dict)

    def report(self, name: str, state: Callable[[], str]) -> None:
        """Show ``state()`` under ``name`` in every readiness answer (a stuck delivery
        backlog degrades readiness, never fails it)."""
        self.degraded[name] = state
