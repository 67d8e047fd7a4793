"""Templates and static assets: one Jinja2 environment, autoescaped, strict about names.

Assets are served from the package under a URL naming their content's digest
(``/portal/static/<name>?v=<digest>``), so they are cached for a year and a new
release is fetched at once. Nothing is loaded from another host.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    digest: str


def _load_assets() -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in files("entrepot.portal").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in STATIC_TYPES:
            body = entry.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            found[entry.name] = Asset(body, STATIC_TYPES[suffix], digest)
    return found


ASSETS = _load_assets()


def static_url(name: str) -> str:
    return f"/portal/static/{name}?v={ASSETS[name].digest}"


environment = Environment(
    loader=PackageLoader("entrepot.portal", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals["static"] = static_url


def render_template(name: str, values: dict[str, Any]) -> str:
    return environment.get_template(name).render(values)


def warm() -> None:
    """Compile every template once, so a replica's first page costs no compilation."""
    for name in environment.list_templates(extensions=["html"]):
        environment.get_template(name)
