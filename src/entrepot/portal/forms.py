"""Form bodies (``application/x-www-form-urlencoded``) read strictly: what cannot be
stored or understood is a 4xx page, never a 5xx further in.

Values keep their first occurrence for single fields (:meth:`Form.get`) and every
occurrence for lists (:meth:`Form.all`, checkboxes). Invalid UTF-8, NUL and
unpaired surrogates are refused here, as the API refuses them in JSON.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from entrepot.problems import BadRequest, UnsupportedMediaType

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 500


class Form:
    def __init__(self, values: dict[str, list[str]]) -> None:
        self.values = values

    def get(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0] if found else default

    def all(self, name: str) -> list[str]:
        return list(self.values.get(name, []))

    def flag(self, name: str) -> bool:
        return self.get(name) in ("on", "true", "1", "yes")


def parse_form(content_type: str | None, body: bytes) -> Form:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if body and media != FORM_TYPE:
        raise UnsupportedMediaType(f"The portal's forms are sent as {FORM_TYPE}.")
    try:
        text = body.decode("ascii")
        values = parse_qs(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The form could not be read: it is not valid UTF-8 form data.") from None
    return checked(values)


def checked(values: dict[str, list[str]]) -> Form:
    """The form, once no name or value holds what cannot be stored (NUL, a surrogate)."""
    for name, items in values.items():
        for value in (name, *items):
            if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
                raise BadRequest("The form holds a character that cannot be stored (NUL).")
    return Form(values)
