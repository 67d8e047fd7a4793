"""Outbound request guard: webhooks reach public addresses only (SSRF).

A URL is checked when a webhook is created or changed, and again before every
attempt: the host is resolved, addresses that are loopback, private,
link-local, multicast, reserved or otherwise not globally routable are
refused unless an operator allows their network
(``ENTREPOT_WEBHOOK_ALLOWED_NETWORKS``), and the request then connects to the
very address that passed the check (with the original ``Host`` header and
TLS server name), so a DNS answer that changes between check and connect
(DNS rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOLVE_TIMEOUT_SECONDS = 5.0


class UnsafeURL(ValueError):
    """The URL is malformed or points somewhere webhooks may not go."""


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the URL rewritten to a checked address."""

    url: str  # scheme://<checked ip>:port/path?query
    host_header: str
    server_name: str | None  # TLS SNI and certificate name (https only)
    address: IPAddress


def parse_networks(raw: str) -> tuple[Network, ...]:
    networks = []
    for part in raw.split(","):
        part = part.strip()
        if part:
            networks.append(ipaddress.ip_network(part, strict=False))
    return tuple(networks)


def check_syntax(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from None
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise UnsafeURL("the URL must not contain spaces or control characters")
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("the URL must use http or https")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("the URL must not carry credentials")
    if parts.fragment:
        raise UnsafeURL("the URL must not have a fragment")
    if port == 0:
        raise UnsafeURL("the URL's port must be between 1 and 65535")
    return parts


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def allowed(address: IPAddress, networks: tuple[Network, ...]) -> bool:
    address = _unmapped(address)
    if any(address in net for net in networks if net.version == address.version):
        return True
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise UnsafeURL(f"the host {host!r} does not resolve") from exc
    found: list[IPAddress] = []
    for info in infos:
        # sockaddr[0] is the address text; IPv6 may carry a %scope suffix.
        found.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
    return found


async def resolve(url: str, networks: tuple[Network, ...]) -> Target:
    """The address to connect to for ``url``, or :class:`UnsafeURL`."""
    parts = check_syntax(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(host, port)
    safe = [a for a in addresses if allowed(a, networks)]
    if not safe:
        shown = ", ".join(sorted({str(a) for a in addresses})) or "nothing"
        raise UnsafeURL(
            f"the host {host!r} resolves to {shown}: loopback, private, link-local and other "
            "non-public addresses are refused unless ENTREPOT_WEBHOOK_ALLOWED_NETWORKS allows them"
        )
    address = _unmapped(safe[0])
    literal = f"[{address}]" if address.version == 6 else str(address)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    is_literal = len(addresses) == 1 and str(addresses[0]) == host
    return Target(
        url=f"{parts.scheme}://{literal}:{port}{path}",
        host_header=parts.netloc,  # no credentials (refused above): host[:port] as written
        server_name=host if parts.scheme == "https" and not is_literal else None,
        address=address,
    )
