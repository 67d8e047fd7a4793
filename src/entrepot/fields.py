"""Field types and bases shared by the request and response models of every package."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel

from entrepot import jsonbody

SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
FIELD_NAME = r"^[^\x00]{1,128}$"


def _storable(value: Any) -> Any:
    """Refuse what PostgreSQL text and jsonb cannot hold: NUL, lone surrogates, NaN."""
    try:
        jsonbody.check_storable(value)
        jsonbody.dumps(value)  # raises ValueError on NaN and infinities
    except jsonbody.JsonBodyError as exc:
        where = f" (at {exc.path})" if exc.path else ""
        raise ValueError(exc.message + where) from None
    except ValueError as exc:
        raise ValueError(f"not storable as JSON: {exc}") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]


class Page(BaseModel):
    next_cursor: str | None
