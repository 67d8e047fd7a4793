"""Physical lines out of a chunked body: boundaries, CRLF, BOM, overlong lines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrepot.records.lines import BOM, Line, split_lines


async def chunked(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for size in sizes:
        yield data[start : start + size]
        start += size
    if start < len(data):
        yield data[start:]


async def collect(data: bytes, sizes: list[int], limit: int = 1 << 20) -> list[Line]:
    return [line async for line in split_lines(chunked(data, sizes), limit)]


async def test_lines_keep_their_terminators_and_numbers() -> None:
    lines = await collect(b"a\r\n\nbc\nlast", [2, 1, 1, 3])
    assert [(line.number, line.raw) for line in lines] == [
        (1, b"a\r\n"),
        (2, b"\n"),
        (3, b"bc\n"),
        (4, b"last"),
    ]
    assert [line.text for line in lines] == [b"a", b"", b"bc", b"last"]


@pytest.mark.parametrize("sizes", [[1, 1, 1, 1], [2, 5], [3], [10]])
async def test_a_bom_is_dropped_even_split_across_chunks(sizes: list[int]) -> None:
    lines = await collect(BOM + b"x\ny", sizes)
    assert [line.raw for line in lines] == [b"x\n", b"y"]


async def test_a_bom_prefix_alone_is_kept() -> None:
    assert [line.raw for line in await collect(b"\xef\xbb", [1])] == [b"\xef\xbb"]


async def test_overlong_lines_are_dropped_but_counted() -> None:
    data = b"ok\n" + b"x" * 50 + b"\nfine\n" + b"y" * 50
    lines = await collect(data, [4] * 40, limit=10)
    assert [(line.number, line.raw) for line in lines] == [
        (1, b"ok\n"),
        (2, None),
        (3, b"fine\n"),
        (4, None),
    ]


@given(
    st.lists(
        (st.just(BOM) | st.binary(max_size=8)).map(lambda b: b.replace(b"\n", b"")), max_size=6
    ),
    st.lists(st.integers(min_value=1, max_value=7), max_size=20),
)
async def test_any_chunking_gives_the_same_lines(parts: list[bytes], sizes: list[int]) -> None:
    data = b"\n".join(parts)
    *complete, last = data.split(b"\n")
    expected = [line + b"\n" for line in complete] + ([last] if last else [])
    if data.startswith(BOM):
        expected[0] = expected[0][len(BOM) :]
    expected = [line for line in expected if line]
    lines = await collect(data, sizes)
    assert [line.raw for line in lines] == expected
    assert [line.number for line in lines] == list(range(1, len(expected) + 1))
