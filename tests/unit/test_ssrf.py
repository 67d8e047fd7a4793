"""The SSRF guard: every IPv6 form that embeds an IPv4 address is judged by it too."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import pytest

from entrepot.webhooks import ssrf

V4 = ipaddress.IPv4Address


def _hex(v4: V4) -> str:
    """The IPv4 address as two IPv6 groups."""
    n = int(v4)
    return f"{n >> 16:x}:{n & 0xFFFF:x}"


def _teredo(server: V4, client: V4) -> str:
    """RFC 4380: 2001:0:server:flags:port:client, port and client inverted."""
    return f"2001:0:{_hex(server)}:8000:{0xFFFF ^ 0x1F90:x}:{_hex(V4(int(client) ^ 0xFFFFFFFF))}"


PUBLIC_V4 = V4("8.8.8.8")

ENCODINGS: dict[str, Callable[[V4], str]] = {
    "mapped": lambda v: f"::ffff:{v}",
    "compatible": lambda v: f"::{v}",
    "translated": lambda v: f"::ffff:0:{v}",
    "nat64": lambda v: f"64:ff9b::{v}",
    "nat64-local": lambda v: f"64:ff9b:1::{v}",
    "6to4": lambda v: f"2002:{_hex(v)}::1",
    "teredo-server": lambda v: _teredo(v, PUBLIC_V4),
    "teredo-client": lambda v: _teredo(V4("65.54.227.120"), v),
    "isatap": lambda v: f"2606:4700:1:2:0:5efe:{v}",
    "isatap-global": lambda v: f"2606:4700:1:2:200:5efe:{v}",
}

REFUSED_V4 = {
    "loopback": V4("127.0.0.1"),
    "rfc1918-10": V4("10.0.0.1"),
    "rfc1918-172": V4("172.16.0.1"),
    "rfc1918-192": V4("192.168.1.1"),
    "metadata": V4("169.254.169.254"),
    "cgnat": V4("100.64.0.1"),
    "unspecified": V4("0.0.0.0"),
    "broadcast": V4("255.255.255.255"),
}

# Forms refused whatever they embed (see ssrf._REFUSED_V6); the others follow their IPv4.
WHOLLY_REFUSED = {"compatible", "translated", "nat64-local", "teredo-server", "teredo-client"}


def test_the_teredo_helper_matches_the_standard_library() -> None:
    teredo = ipaddress.IPv6Address(_teredo(V4("65.54.227.120"), V4("192.0.2.45"))).teredo
    assert teredo == (V4("65.54.227.120"), V4("192.0.2.45"))
    assert ipaddress.IPv6Address(ENCODINGS["6to4"](V4("127.0.0.1"))).sixtofour == V4("127.0.0.1")


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("kind", REFUSED_V4)
def test_every_encoding_of_a_refused_ipv4_is_refused(encoding: str, kind: str) -> None:
    text = ENCODINGS[encoding](REFUSED_V4[kind])
    assert not ssrf.allowed(REFUSED_V4[kind], ())
    assert not ssrf.allowed(ipaddress.ip_address(text), ()), text


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_encodings_of_a_public_ipv4(encoding: str) -> None:
    text = ENCODINGS[encoding](PUBLIC_V4)
    assert ssrf.allowed(ipaddress.ip_address(text), ()) is (encoding not in WHOLLY_REFUSED), text


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("2001:4860:4860::8888", True),
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2002:101:101:1::2", True),  # 6to4 of 1.1.1.1, with a subnet
        ("64:ff9b::101:101", True),  # NAT64 of 1.1.1.1
        ("2606:4700::5efe:0:0", False),  # an ISATAP identifier embedding 0.0.0.0
        ("2002:7f00:1::", False),
        ("2002:a9fe:a9fe::", False),
        ("2002:c0a8:101:ffff::1", False),
        ("::", False),
        ("::1", False),
        ("fe80::1", False),
        ("fe80::5efe:808:808", False),  # ISATAP on a link-local prefix
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("64:ff9b:1:ffff::1", False),
    ],
)
def test_addresses(text: str, accepted: bool) -> None:
    assert ssrf.allowed(ipaddress.ip_address(text), ()) is accepted


@pytest.mark.parametrize(
    ("text", "allow"),
    [
        ("127.0.0.1", "127.0.0.0/8"),
        ("::ffff:127.0.0.1", "127.0.0.0/8"),
        ("2002:7f00:1::", "127.0.0.0/8"),  # the embedded address is allowed, so is its 6to4
        ("64:ff9b::a00:1", "10.0.0.0/8"),
        ("2002:a00:1::", "2002::/16"),  # an IPv6 network allowed as such wins outright
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"),
        ("64:ff9b:1::a00:1", "64:ff9b:1::/48"),
        ("::127.0.0.1", "::/96"),
        ("fd00::1", "fd00::/8"),
    ],
)
def test_the_operator_allow_list_still_allows(text: str, allow: str) -> None:
    address = ipaddress.ip_address(text)
    assert not ssrf.allowed(address, ())
    assert ssrf.allowed(address, ssrf.parse_networks(allow))


def test_allowing_one_network_does_not_allow_embedded_others() -> None:
    networks = ssrf.parse_networks("127.0.0.0/8")
    assert not ssrf.allowed(ipaddress.ip_address("2002:a9fe:a9fe::"), networks)
    assert not ssrf.allowed(ipaddress.ip_address("2606:4700::5efe:a9fe:a9fe"), networks)


IP_TEXT = re.compile(r"\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f]*:[0-9a-f:.]*", re.IGNORECASE)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/hook",  # /etc/hosts: 127.0.0.1
        "http://does-not-resolve.invalid/hook",
        "http://10.0.0.7/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[2002:a9fe:a9fe::]/latest/meta-data",
        "https://[64:ff9b::a9fe:a9fe]/",
    ],
)
async def test_the_refusal_never_reveals_resolution(url: str) -> None:
    with pytest.raises(ssrf.UnsafeURL) as refused:
        await ssrf.resolve(url, ())
    message = str(refused.value)
    assert message == ssrf.NOT_PUBLIC
    assert "ENTREPOT_WEBHOOK_ALLOWED_NETWORKS" in message
    assert IP_TEXT.search(message) is None, message
    assert "resolve" not in message


async def test_a_public_embedding_connects_to_the_address_itself() -> None:
    target = await ssrf.resolve("http://[2002:808:808::1]:8080/hook?x=1", ())
    assert target.url == "http://[2002:808:808::1]:8080/hook?x=1"
    assert target.host_header == "[2002:808:808::1]:8080"
    assert target.server_name is None
