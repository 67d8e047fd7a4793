"""The small async client the ``entrepot sync`` agent and the CLI's bulk commands use.

It keeps the API they were written against (dicts, ``ClientError``,
``FeedPage``, ``ExportStream``) on top of the SDK's transport
(:class:`entrepot.client._async.AsyncTransport`): the same retry policy,
backoff and problem parsing as :class:`entrepot.client.AsyncClient`, so there
is one retry loop in the package. Every GET is retried (connection errors, 429,
503, ``Retry-After`` honoured); an import, whose body is a one-shot stream, is
sent once (only a failure to connect is retried).

JSON is parsed with the standard library so integers stay exact at any size,
as the server keeps them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from entrepot import __version__
from entrepot.client._async import AsyncTransport
from entrepot.client.errors import ConnectionFailed, ProblemError
from entrepot.client.retry import RetryPolicy, parse_retry_after

Json = dict[str, Any]
Params = Mapping[str, str | int | float]

UPLOAD_CHUNK = 256 * 1024


class ClientError(Exception):
    """A problem document (RFC 9457) from the server, or a connection that never succeeded.

    ``status`` is 0 when no HTTP answer was had at all.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        type: str = "about:blank",
        errors: list[Json] | None = None,
        body: Json | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.errors = errors or []
        self.body = body or {}
        self.retry_after = retry_after

    @classmethod
    def from_problem(cls, problem: ProblemError) -> ClientError:
        return cls(
            problem.status,
            problem.title,
            problem.detail,
            type=problem.type,
            errors=problem.errors,
            body=problem.problem,
            retry_after=problem.retry_after,
        )

    @classmethod
    def from_response(cls, response: httpx.Response) -> ClientError:
        """Build from a response whose body has been read."""
        body: Json = {}
        try:
            parsed = json.loads(response.content)
            if isinstance(parsed, dict):
                body = parsed
        except ValueError:
            pass
        errors = body.get("errors")
        return cls(
            response.status_code,
            str(body.get("title") or response.reason_phrase or "HTTP error"),
            str(body.get("detail") or ""),
            type=str(body.get("type") or "about:blank"),
            errors=errors if isinstance(errors, list) else None,
            body=body,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )


DEFAULT_RETRY = RetryPolicy(attempts=6, base_delay=0.25, max_delay=10.0)


@dataclass(frozen=True)
class FeedPage:
    changes: list[Json]
    last_seq: int
    incarnation: str | None = None


@dataclass
class ExportStream:
    """An open export: ``seq`` is the feed position its snapshot equals (X-Entrepot-Seq),
    in the dataset's ``incarnation`` (X-Entrepot-Incarnation)."""

    seq: int
    media_type: str
    response: httpx.Response = field(repr=False)
    incarnation: str | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.aiter_bytes():
            yield chunk

    async def lines(self) -> AsyncIterator[str]:
        """Non-empty lines, without their line ends.

        Split on ``\\n`` bytes only: JSON text may hold U+2028, U+2029 or U+0085
        raw, which ``str.splitlines`` (and httpx's ``aiter_lines``) treat as line ends.
        """
        pending = b""
        async for chunk in self.response.aiter_bytes():
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                if raw.strip():
                    yield raw.decode("utf-8")
        if pending.strip():
            yield pending.decode("utf-8")

    async def records(self) -> AsyncIterator[Json]:
        """Parsed NDJSON objects (envelopes or bare data, as requested)."""
        async for line in self.lines():
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ClientError(0, "Bad export line", f"expected an object, got {line[:80]}")
            yield item


class Client:
    """Async client; use as ``async with Client(url, token) as api: ...``.

    ``http`` is its httpx client (``transport`` replaces its network, for tests).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or DEFAULT_RETRY
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=transport)
        self._t = AsyncTransport(base_url, token, retry=self.retry, timeout=timeout, http=self.http)
        self._t.headers["User-Agent"] = f"entrepot-client/{__version__}"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- plumbing -------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        limits: httpx.Timeout | None = None,
        stream: bool = False,
        **options: Any,
    ) -> httpx.Response:
        """Send through the SDK's transport; its errors become ClientError.

        With ``stream``, the successful response is returned unread (the caller closes it).
        """
        query = [(k, str(v)) for k, v in (params or {}).items()]
        try:
            return await self._t.request(
                method, path, params=query, timeouts=limits, stream=stream, **options
            )
        except ProblemError as exc:
            raise ClientError.from_problem(exc) from None
        except ConnectionFailed as exc:
            cause = exc.cause
            raise ClientError(0, "Connection failed", f"{type(cause).__name__}: {cause}") from exc

    async def _json(self, path: str, params: Params | None = None) -> Json:
        response = await self._send("GET", path, params=params)
        body = json.loads(response.content)
        if not isinstance(body, dict):
            raise ClientError(response.status_code, "Unexpected body", "expected a JSON object")
        return body

    # -- catalog --------------------------------------------------------------

    async def get_dataset(self, name: str) -> Json:
        return await self._json(f"/v1/datasets/{name}")

    async def list_datasets(
        self,
        *,
        q: str | None = None,
        org: str | None = None,
        tag: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Json]:
        """Every dataset the caller may see, following cursors."""
        params: dict[str, str | int | float] = {"limit": page_size}
        for key, value in (("q", q), ("org", org), ("tag", tag)):
            if value:
                params[key] = value
        while True:
            page = await self._json("/v1/datasets", params)
            for item in page.get("data", []):
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return
            params["cursor"] = cursor

    # -- change feed ----------------------------------------------------------

    async def changes(
        self,
        dataset: str,
        after: int,
        *,
        limit: int = 1000,
        wait: float = 0,
        incarnation: str | None = None,
    ) -> FeedPage:
        """One page of changes after ``after``; with ``wait``, a long poll.

        A position the feed cannot continue from raises ClientError with status
        410 (its body's ``reason`` says why: ``compacted``, ``ahead``, or
        ``incarnation`` when ``after`` belongs to an earlier life of the dataset):
        the caller re-reads the dataset with :meth:`export`.
        """
        timeout = httpx.Timeout(self.http.timeout.connect or 30.0, read=wait + 30.0)
        params: dict[str, str | int | float] = {"after": after, "limit": limit}
        if wait > 0:
            params["wait"] = wait
        if incarnation is not None:
            params["incarnation"] = incarnation
        response = await self._send(
            "GET", f"/v1/datasets/{dataset}/changes", params=params, limits=timeout
        )
        body = json.loads(response.content)
        return FeedPage(list(body["changes"]), int(body["last_seq"]), body.get("incarnation"))

    # -- bulk -----------------------------------------------------------------

    @asynccontextmanager
    async def export(
        self, dataset: str, *, fmt: str = "ndjson", envelope: bool = False
    ) -> AsyncIterator[ExportStream]:
        """Open an export; retried until its first byte, then streamed as is."""
        params: dict[str, str | int | float] = {"format": fmt}
        if envelope:
            params["envelope"] = "true"
        timeout = httpx.Timeout(30.0, read=300.0)
        response = await self._send(
            "GET", f"/v1/datasets/{dataset}/export", params=params, limits=timeout, stream=True
        )
        try:
            seq = int(response.headers.get("x-entrepot-seq", "0"))
            yield ExportStream(
                seq,
                response.headers.get("content-type", ""),
                response,
                response.headers.get("x-entrepot-incarnation"),
            )
        finally:
            await response.aclose()

    async def import_file(
        self,
        dataset: str,
        path: Path,
        *,
        fmt: str | None = None,
        mode: str = "insert",
        on_error: str = "abort",
        progress: Callable[[int], None] | None = None,
    ) -> Json:
        """Stream a file to the import endpoint; ``progress`` gets each chunk's byte count.

        Not retried: an all-or-nothing import that failed wrote nothing, and
        the caller decides whether to send it again.
        """
        kind = fmt or ("csv" if path.suffix.lower() == ".csv" else "ndjson")
        content_type = "text/csv" if kind == "csv" else "application/x-ndjson"

        async def body() -> AsyncIterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK):
                    if progress is not None:
                        progress(len(chunk))
                    yield chunk

        response = await self._send(
            "POST",
            f"/v1/datasets/{dataset}/import",
            params={"mode": mode, "on_error": on_error},
            content=body,
            headers={"Content-Type": content_type},
            limits=httpx.Timeout(30.0, read=None),
            idempotency_key=None,
            resendable=False,  # a one-shot stream
        )
        report: Json = response.json()
        return report
