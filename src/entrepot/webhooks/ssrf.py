"""Outbound request guard: webhooks reach public addresses only (SSRF).

A URL is checked when a webhook is created or changed, and again before every
attempt: the host is resolved, addresses that are loopback, private,
link-local, multicast, reserved or otherwise not globally routable are
refused unless an operator allows their network
(``ENTREPOT_WEBHOOK_ALLOWED_NETWORKS``), and the request then connects to the
very address that passed the check (with the original ``Host`` header and
TLS server name), so a DNS answer that changes between check and connect
(DNS rebinding) cannot redirect it.

IPv6 addresses that carry an IPv4 address (mapped, NAT64, 6to4, ISATAP) are
judged by the IPv4 address too, since a relay or translator on the way
delivers to it; forms whose embedded address cannot be trusted or located
are refused outright. The refusal never says what a host resolved to (or
whether it resolved at all): webhook creation must not become a way to map
internal DNS. The addresses go to the server log for operators instead.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import structlog

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOLVE_TIMEOUT_SECONDS = 5.0

# One text for every host, name or literal, resolving or not.
NOT_PUBLIC = (
    "its host is not reachable at a public address (loopback, private, link-local and "
    "other non-public addresses, also when embedded in an IPv6 address, are refused unless "
    "ENTREPOT_WEBHOOK_ALLOWED_NETWORKS allows them)"
)

# Refused whatever they embed: IPv4-compatible (deprecated by RFC 4291, never
# routed), IPv4-translated (SIIT-internal, RFC 2765), NAT64 local-use (RFC
# 8215: the operator picks where the IPv4 address sits) and Teredo (RFC 4380:
# not globally reachable; its server and obfuscated client are both IPv4).
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "2001::/32")
)
# RFC 6052's well-known prefix, IPv4 in the last 32 bits: public only as its IPv4 is.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# ISATAP interface identifiers (RFC 5214): 0000:5efe or 0200:5efe (u bit), g bit either way.
_ISATAP_MASK, _ISATAP = 0xFCFF_FFFF, 0x0000_5EFE

log = structlog.get_logger("entrepot.webhooks")


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


def _embedded(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a 6to4 or ISATAP address hands its packets to."""
    found = [address.sixtofour] if address.sixtofour is not None else []
    low = int(address) & 0xFFFF_FFFF_FFFF_FFFF
    if (low >> 32) & _ISATAP_MASK == _ISATAP:
        found.append(ipaddress.IPv4Address(low & 0xFFFF_FFFF))
    return found


def allowed(address: IPAddress, networks: tuple[Network, ...]) -> bool:
    """Public, or inside a network the operator allowed (which overrides every other rule)."""
    address = _unmapped(address)
    if any(address in net for net in networks if net.version == address.version):
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in net for net in _REFUSED_V6):
            return False
        if address in _NAT64:  # by its IPv4 alone: Python's tables call the prefix reserved
            return allowed(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF), networks)
        if not all(allowed(inner, networks) for inner in _embedded(address)):
            return False
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
        log.info("webhook_url_refused", host=host, error=f"{type(exc).__name__}: {exc}")
        raise UnsafeURL(NOT_PUBLIC) from None
    found: list[IPAddress] = []
    for info in infos:
        # sockaddr[0] is the address text; IPv6 may carry a %scope suffix.
        found.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
    return found


async def resolve(url: str, networks: tuple[Network, ...]) -> Target:
    """The address to connect to for ``url``, or :class:`UnsafeURL`."""
    literal = _literal_target(url, networks)
    if literal is not None:
        return literal
    parts = check_syntax(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return _target(parts, await _resolve(host, port), networks)


@functools.lru_cache(maxsize=4096)
def _literal_target(url: str, networks: tuple[Network, ...]) -> Target | None:
    """The target of a URL whose host is an address, None for a host name. Kept: with no
    DNS involved it is a function of the URL and the allowed networks alone, and
    deliveries ask for it on every attempt (a profile of one endpoint at 1,000
    deliveries/s: about 4% of the worker's loop in parsing and checking the same
    URL). A refusal raises, so it is never kept, and is logged each time."""
    parts = check_syntax(url)
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return _target(parts, [address], networks)


def _target(
    parts: SplitResult, addresses: list[IPAddress], networks: tuple[Network, ...]
) -> Target:
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    safe = [a for a in addresses if allowed(a, networks)]
    if not safe:
        log.info("webhook_url_refused", host=host, addresses=sorted({str(a) for a in addresses}))
        raise UnsafeURL(NOT_PUBLIC)
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
