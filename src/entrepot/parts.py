"""The container as the request edge sees it: ``components(request)`` and ``part(Kind)``.

Kept apart from :mod:`entrepot.components` so that the parts themselves (caches,
services) can register with the container without importing the web framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from starlette.requests import HTTPConnection

from entrepot.components import Components

T = TypeVar("T")


def components(connection: HTTPConnection) -> Components:
    """The app's container (set by the lifespan before the first request)."""
    return app_components(connection.scope["app"])


def app_components(app: Any) -> Components:
    """``app.state.components``, read from the state's own mapping: the attribute would
    first fail an ordinary lookup (an ``AttributeError`` made and dropped, on every
    request) before Starlette's ``State.__getattr__`` finds it there."""
    found: Components = app.state._state["components"]
    return found


class Part:
    """A FastAPI dependency giving one part by type: ``Depends(part(RecordService))``.

    A class (not a closure) so that direct routes recognise it and give the part
    without the dependency solver.
    """

    __slots__ = ("kind",)

    def __init__(self, kind: type[Any]) -> None:
        self.kind = kind

    def __call__(self, connection: HTTPConnection) -> Any:
        return components(connection).get(self.kind)

    def __repr__(self) -> str:
        return f"part({self.kind.__qualname__})"


def part(kind: type[T]) -> Callable[[HTTPConnection], T]:
    return cast("Callable[[HTTPConnection], T]", Part(kind))
