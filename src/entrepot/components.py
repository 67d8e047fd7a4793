"""The application's long-lived parts, built once at startup and found by type.

The lifespan builds every part (pools, caches, services, background loops) and
registers it here; endpoints name the part they need in their signature,
``records: Annotated[RecordService, Depends(part(RecordService))]`` (see
:mod:`entrepot.parts`), and get it typed, with no ``app.state`` lookups read as
``Any``. Domain packages cannot import the wiring (it sits above them), so they
ask by type, and the container refuses at once, naming the type, when a part
was never provided.

Caches register their own invalidation: :meth:`Components.on_invalidate` says
which topics drop what, and the one cross-replica listener calls
:meth:`Components.invalidate` for each topic it hears, without knowing any cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

T = TypeVar("T")

EVERY_TOPIC = "*"
"""Announced when anything may have changed (a replica's listener reconnected)."""


@dataclass(frozen=True, slots=True)
class _Listener:
    drop: Callable[[str], None]
    topics: frozenset[str] | None  # None: every topic
    prefixes: tuple[str, ...]

    def hears(self, topic: str) -> bool:
        if self.topics is None or topic == EVERY_TOPIC:
            return True
        return topic in self.topics or topic.startswith(self.prefixes)


class Components:
    """Parts by type, and who drops what when a topic is announced."""

    def __init__(self) -> None:
        self._parts: dict[type[Any], Any] = {}
        self._listeners: list[_Listener] = []

    def provide(self, part: T, kind: type[T] | None = None) -> T:
        """Register ``part`` as the one ``kind`` (default: its own class)."""
        key = kind or type(part)
        if key in self._parts:
            raise ValueError(f"{key.__qualname__} is provided twice")
        self._parts[key] = part
        return part

    def replace(self, part: T, kind: type[T]) -> T:
        """Put ``part`` in the place of the ``kind`` provided; return the one it replaces
        (for tests that swap a part for a failing one)."""
        previous = self.get(kind)
        self._parts[kind] = part
        return previous

    def get(self, kind: type[T]) -> T:
        try:
            return cast("T", self._parts[kind])
        except KeyError:
            raise LookupError(f"no {kind.__qualname__} was provided at startup") from None

    def find(self, kind: type[T]) -> T | None:
        """The part, or None for an optional one (Redis when not configured)."""
        return cast("T | None", self._parts.get(kind))

    def on_invalidate(
        self,
        drop: Callable[[str], None],
        *,
        topics: Iterable[str] | None = None,
        prefixes: Iterable[str] = (),
    ) -> None:
        """Call ``drop(topic)`` for announced ``topics`` or topics with one of ``prefixes``
        (and for ``*``); with neither, for every topic."""
        prefixes = tuple(prefixes)
        heard = None if topics is None and not prefixes else frozenset(topics or ())
        self._listeners.append(_Listener(drop, heard, prefixes))

    def invalidate(self, topic: str) -> None:
        for listener in self._listeners:
            if listener.hears(topic):
                listener.drop(topic)
