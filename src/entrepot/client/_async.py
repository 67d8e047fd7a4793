"""The asynchronous client, :class:`AsyncClient`.

``_sync.py`` (the blocking :class:`Client`) is generated from this file by
``python -m entrepot.client._unasync``: edit here, regenerate, and commit both
(``tests/unit/test_sdk_generated.py`` fails when they differ). The decisions
both make (retries, backoff, tokens, problems) live in the sans-IO modules
``retry``, ``auth``, ``errors`` and ``request``; this file only does the I/O.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx

from entrepot import __version__
from entrepot.client import request as rq
from entrepot.client.auth import ApiKey, ClientCredentials, Credential, TokenCache
from entrepot.client.errors import ConnectionFailed, problem_from_document, problem_from_response
from entrepot.client.models import (
    AccessRequest,
    App,
    AppCreated,
    AuditEntry,
    Change,
    ChangePage,
    Checkpoint,
    ClientSecret,
    Dataset,
    DatasetUsage,
    Delivery,
    ExportResult,
    Grant,
    ImportReport,
    Json,
    Key,
    KeyCreated,
    KeyRotated,
    Me,
    Member,
    Org,
    Page,
    Plan,
    Record,
    Replayed,
    SecretRotated,
    StreamTicket,
    Transfer,
    Usage,
    User,
    Webhook,
    WebhookCreated,
    WhoAmI,
)
from entrepot.client.request import AUTO, KeyOption, Params
from entrepot.client.retry import SAFE_METHODS, RetryPolicy
from entrepot.client.sse import EventParser

R = TypeVar("R")
Sleep = Callable[[float], Awaitable[None]]
ProgressCallback = Callable[[Transfer], None]
CheckpointCallback = Callable[[Checkpoint], None]


class AsyncTransport:
    """One httpx client, the credential, and the retry loop every call goes through."""

    def __init__(
        self,
        base_url: str,
        credential: Credential | str | None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(credential, str):
            credential = ApiKey(credential)
        self.credential = credential
        self.tokens = (
            TokenCache(credential, clock) if isinstance(credential, ClientCredentials) else None
        )
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.clock = clock
        self.sleep: Sleep = sleep or asyncio.sleep
        self._owns_http = http is None  # a client passed in is the caller's to close
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self.base_url = base_url.rstrip("/")
        self.headers = {"User-Agent": f"entrepot-sdk/{__version__}", **(headers or {})}
        self._token_lock = asyncio.Lock()

    async def close(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: bytes | Callable[[], AsyncIterator[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: KeyOption = AUTO,
        honours_key: bool = False,
        replayable: bool | None = None,
        resendable: bool = True,
        stream: bool = False,
        timeouts: httpx.Timeout | None = None,
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send with retries; a non-2xx answer (but 304) raises a ProblemError.

        ``idempotency_key``: AUTO (a new key for a write, the same on each retry),
        a key of the caller's, or None. A request is ``replayable`` (retried after
        it may have reached the server) when its method is safe, or when it
        carries a key and the route ``honours_key`` (replays the first answer).
        ``content`` may be a callable making the body anew for each try; with
        ``resendable`` False it is sent once (only a failure to connect is retried).
        ``stream`` returns a successful response unread: the caller closes it.
        """
        key = rq.idempotency_key(method, idempotency_key)
        if replayable is None:
            replayable = method.upper() in SAFE_METHODS or (key is not None and honours_key)
        fixed = {**self.headers, **(headers or {})}
        if key:
            fixed["Idempotency-Key"] = key
        if json is not None:
            content = rq.dumps(json)
            fixed.setdefault("Content-Type", "application/json")
        url = self.base_url + path
        attempt = 0
        refreshed = False
        while True:
            sent_headers = dict(fixed)
            token = await self._token() if authenticate else None
            if token is not None:
                sent_headers["Authorization"] = f"Bearer {token}"
            request = self.http.build_request(
                method,
                url,
                params=tuple(params) if params else None,
                content=content() if callable(content) else content,
                headers=sent_headers,
                timeout=timeouts or httpx.Timeout(self.timeout),
            )
            try:
                response = await self.http.send(request, stream=stream)
            except httpx.TransportError as exc:
                # These never sent a byte: safe to try again whatever the request.
                connected = not isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                delay = self.retry.delay_after_error(
                    attempt, replayable=replayable and resendable, connected=connected
                )
                if delay is None:
                    raise ConnectionFailed(method, url, exc) from exc
                await self.sleep(delay)
                attempt += 1
                continue
            if response.is_success or response.status_code == 304:
                return response
            await response.aread()
            await response.aclose()
            if response.status_code == 401 and self.tokens and token and not refreshed:
                self.tokens.refused(token)  # expired or revoked early: a fresh token, once
                refreshed = True
                continue
            problem = problem_from_response(response)
            delay = (
                self.retry.delay_after_status(
                    attempt, response.status_code, problem.retry_after, replayable=replayable
                )
                if resendable
                else None
            )
            if delay is None:
                raise problem
            await self.sleep(delay)
            attempt += 1

    async def json(self, method: str, path: str, **options: Any) -> Any:
        response = await self.request(method, path, **options)
        return rq.loads(response.content)

    async def _token(self) -> str | None:
        if isinstance(self.credential, ApiKey):
            return self.credential.key
        if self.tokens is None:
            return None
        token = self.tokens.valid()
        if token is not None:
            return token
        async with self._token_lock:  # one fetch for every request that found none
            token = self.tokens.valid()
            if token is None:
                token = await self._fetch_token()
            return token

    async def _fetch_token(self) -> str:
        assert self.tokens is not None
        credentials = self.tokens.credentials
        form = {
            **credentials.form(),
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        }
        asked_at = self.clock()
        answer = await self.json(
            "POST",
            "/oauth/token",
            content=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            idempotency_key=None,
            replayable=True,  # a second token is as good as the first
            authenticate=False,
        )
        return self.tokens.store(answer, asked_at=asked_at)


class AsyncPager(Generic[R]):
    """Every item of a list, fetched a cursor page at a time as you iterate.

    ``async for item in pager``; ``pager.pages()`` for whole pages (with their
    cursors); ``await pager.collect()`` for a list (mind the size).
    """

    def __init__(
        self,
        transport: AsyncTransport,
        path: str,
        params: Params,
        parse: Callable[[Json], R],
        *,
        cursor: str | None = None,
    ) -> None:
        self._t = transport
        self._path = path
        self._params = params
        self._parse = parse
        self._cursor = cursor

    def __aiter__(self) -> AsyncIterator[R]:
        return self._items()

    async def _items(self) -> AsyncIterator[R]:
        async for page in self.pages():
            for item in page.data:
                yield item

    async def pages(self) -> AsyncIterator[Page[R]]:
        cursor = self._cursor
        while True:
            params = [*self._params, *([("cursor", cursor)] if cursor else [])]
            body = await self._t.json("GET", self._path, params=params)
            page = Page([self._parse(item) for item in body["data"]], body.get("next_cursor"))
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def collect(self) -> list[R]:
        return [item async for item in self]


class _AsyncNamespace:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    def _pager(self, path: str, params: Params, parse: Callable[[Json], R]) -> AsyncPager[R]:
        return AsyncPager(self._t, path, params, parse)


def _record(dataset: str, body: Json, etag: str | None = None) -> Record:
    record = Record.model_validate({**body, "dataset": dataset})
    if etag:
        record.etag = etag
    return record


class AsyncOrgs(_AsyncNamespace):
    async def create(self, name: str, title: str) -> Org:
        return Org.model_validate(
            await self._t.json("POST", "/v1/orgs", json={"name": name, "title": title})
        )

    async def get(self, name: str) -> Org:
        return Org.model_validate(await self._t.json("GET", f"/v1/orgs/{rq.segment(name)}"))

    def list(self, *, limit: int | None = None) -> AsyncPager[Org]:
        return self._pager("/v1/orgs", rq.query(limit=limit), Org.model_validate)

    async def add_member(self, org: str, email: str, role: str = "member") -> Member:
        """Make a user a member (``owner``, ``admin`` or ``member``); again changes the role."""
        return Member.model_validate(
            await self._t.json(
                "POST",
                f"/v1/orgs/{rq.segment(org)}/members",
                json={"email": email, "role": role},
            )
        )

    def members(self, org: str, *, limit: int | None = None) -> AsyncPager[Member]:
        return self._pager(
            f"/v1/orgs/{rq.segment(org)}/members", rq.query(limit=limit), Member.model_validate
        )

    async def remove_member(self, org: str, user_id: str) -> None:
        await self._t.request("DELETE", f"/v1/orgs/{rq.segment(org)}/members/{rq.segment(user_id)}")


class AsyncUsers(_AsyncNamespace):
    """People: accounts (platform admins create them) and password sign-in."""

    async def create(self, email: str, password: str, *, is_platform_admin: bool = False) -> User:
        body = {"email": email, "password": password, "is_platform_admin": is_platform_admin}
        return User.model_validate(await self._t.json("POST", "/v1/users", json=body))

    async def update(self, user_id: str, *, disabled: bool) -> User:
        return User.model_validate(
            await self._t.json(
                "PATCH", f"/v1/users/{rq.segment(user_id)}", json={"disabled": disabled}
            )
        )

    async def me(self) -> Me:
        """Who the credential is, when it is a person's token."""
        return Me.model_validate(await self._t.json("GET", "/v1/users/me"))

    async def sign_in(self, email: str, password: str) -> str:
        """A user's access token for ``email`` and ``password`` (pass it as the credential)."""
        answer = await self._t.json(
            "POST",
            "/v1/auth/token",
            json={"email": email, "password": password},
            idempotency_key=None,
            authenticate=False,
        )
        return str(answer["access_token"])


class AsyncDatasets(_AsyncNamespace):
    async def create(
        self,
        name: str,
        *,
        org: str,
        title: str,
        schema: Mapping[str, Any],
        description: str | None = None,
        primary_key: str | None = None,
        visibility: str | None = None,
        indexes: Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
        require_if_match: bool | None = None,
        auto_approve: bool | None = None,
        license: str | None = None,
        license_url: str | None = None,
        contact: Mapping[str, str] | None = None,
    ) -> Dataset:
        """``contact``: any of ``name``, ``email`` and ``url``; ``license``: an SPDX id."""
        body = rq.compact(
            name=name,
            org=org,
            title=title,
            schema=dict(schema),
            description=description,
            primary_key=primary_key,
            visibility=visibility,
            indexes=list(indexes) if indexes is not None else None,
            tags=list(tags) if tags is not None else None,
            require_if_match=require_if_match,
            auto_approve=auto_approve,
            license=license,
            license_url=license_url,
            contact=dict(contact) if contact is not None else None,
        )
        return Dataset.model_validate(await self._t.json("POST", "/v1/datasets", json=body))

    async def get(self, name: str) -> Dataset:
        return Dataset.model_validate(await self._t.json("GET", f"/v1/datasets/{rq.segment(name)}"))

    def list(
        self,
        *,
        q: str | None = None,
        org: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Dataset]:
        params = rq.query(q=q, org=org, tag=tag, limit=limit)
        return self._pager("/v1/datasets", params, Dataset.model_validate)

    async def usage(
        self,
        name: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        granularity: str | None = None,
    ) -> DatasetUsage:
        """Every app's requests to the dataset (its provider's view), by period and app."""
        params = rq.query(
            granularity=granularity,
            **{
                "from": start.isoformat() if start else None,
                "to": end.isoformat() if end else None,
            },
        )
        return DatasetUsage.model_validate(
            await self._t.json("GET", f"/v1/datasets/{rq.segment(name)}/usage", params=params)
        )

    async def update(self, name: str, **changes: Any) -> Dataset:
        """PATCH the metadata: ``title``, ``description``, ``schema``, ``visibility``,
        ``license``, ``contact``... (``None`` removes a licence or a contact)."""
        return Dataset.model_validate(
            await self._t.json("PATCH", f"/v1/datasets/{rq.segment(name)}", json=changes)
        )

    async def delete(self, name: str) -> None:
        await self._t.request("DELETE", f"/v1/datasets/{rq.segment(name)}")


class AsyncRecords(_AsyncNamespace):
    """Records of a dataset. Every write carries an Idempotency-Key (a new one unless you
    pass yours), so a retry after a lost answer is applied once."""

    async def get(self, dataset: str, record_id: str) -> Record:
        response = await self._t.request("GET", rq.record_path(dataset, record_id))
        return _record(dataset, rq.loads(response.content), response.headers.get("etag"))

    async def refresh(self, record: Record) -> Record:
        """The record as it is now: the same object if unchanged (304 to ``If-None-Match``)."""
        dataset = _dataset_of(record)
        response = await self._t.request(
            "GET",
            rq.record_path(dataset, record.id),
            headers={"If-None-Match": record.etag} if record.etag else None,
        )
        if response.status_code == 304:
            return record
        return _record(dataset, rq.loads(response.content), response.headers.get("etag"))

    async def _write(
        self,
        method: str,
        dataset: str,
        record_id: str | None,
        body: Any,
        headers: dict[str, str],
        idempotency_key: KeyOption,
    ) -> httpx.Response:
        return await self._t.request(
            method,
            rq.record_path(dataset, record_id),
            content=rq.dumps(body) if body is not None else None,
            headers=headers,
            idempotency_key=idempotency_key,
            honours_key=True,
        )

    async def create(
        self, dataset: str, data: Mapping[str, Any], *, idempotency_key: KeyOption = AUTO
    ) -> Record:
        response = await self._write(
            "POST", dataset, None, dict(data), _json_headers(), idempotency_key
        )
        return _record(dataset, rq.loads(response.content), response.headers.get("etag"))

    async def put(
        self,
        dataset: str,
        record_id: str,
        data: Mapping[str, Any],
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        idempotency_key: KeyOption = AUTO,
    ) -> Record:
        """Replace (or create) a record; ``if_none_match="*"`` creates only if absent."""
        headers = _json_headers(if_match=if_match, if_none_match=if_none_match)
        response = await self._write(
            "PUT", dataset, record_id, dict(data), headers, idempotency_key
        )
        return _record(dataset, rq.loads(response.content), response.headers.get("etag"))

    async def patch(
        self,
        dataset: str,
        record_id: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        idempotency_key: KeyOption = AUTO,
    ) -> Record:
        """JSON Merge Patch (RFC 7396): ``None`` removes a field."""
        headers = _json_headers(if_match=if_match)
        headers["Content-Type"] = "application/merge-patch+json"
        response = await self._write(
            "PATCH", dataset, record_id, dict(changes), headers, idempotency_key
        )
        return _record(dataset, rq.loads(response.content), response.headers.get("etag"))

    async def delete(
        self,
        dataset: str,
        record_id: str,
        *,
        if_match: str | None = None,
        idempotency_key: KeyOption = AUTO,
    ) -> None:
        headers = {"If-Match": if_match} if if_match else {}
        await self._write("DELETE", dataset, record_id, None, headers, idempotency_key)

    async def update(
        self, record: Record, data: Mapping[str, Any] | None = None, **options: Any
    ) -> Record:
        """Replace ``record`` with ``data`` (default: its own, edited ``record.data``) only if
        nobody changed it since it was read (``If-Match``; PreconditionFailed otherwise)."""
        return await self.put(
            _dataset_of(record),
            record.id,
            record.data if data is None else data,
            if_match=record.etag,
            **options,
        )

    async def merge(self, record: Record, changes: Mapping[str, Any], **options: Any) -> Record:
        """Merge-patch ``record`` if unchanged since it was read (``If-Match``)."""
        return await self.patch(
            _dataset_of(record), record.id, changes, if_match=record.etag, **options
        )

    async def remove(self, record: Record, **options: Any) -> None:
        """Delete ``record`` if unchanged since it was read (``If-Match``)."""
        await self.delete(_dataset_of(record), record.id, if_match=record.etag, **options)

    def list(
        self,
        dataset: str,
        *,
        filter: Mapping[str, Any] | None = None,
        sort: str | Iterable[str] | None = None,
        fields: str | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Record]:
        """Every matching record, in ``sort`` order, ``limit`` per page (up to 1000).

        ``filter`` maps fields to a value (equality), a list (``in``) or
        ``{op: value}`` with op in ``eq ne gt gte lt lte in like``.
        """
        params = [
            *rq.filter_params(filter),
            *rq.query(sort=rq.comma(sort), fields=rq.comma(fields), limit=limit),
        ]
        return self._pager(rq.record_path(dataset), params, lambda body: _record(dataset, body))


class AsyncBulk(_AsyncNamespace):
    async def import_records(
        self,
        dataset: str,
        source: rq.ImportSource,
        *,
        format: str | None = None,
        mode: str = "insert",
        on_error: str = "abort",
        progress: ProgressCallback | None = None,
    ) -> ImportReport:
        """Stream records to ``POST /import``: ``source`` is a path, a binary file, or an
        iterable of dicts (sent as NDJSON a chunk at a time, never whole in memory).

        ``mode``: insert or upsert; ``on_error``: abort (all or nothing) or skip.
        ``progress`` is called after each chunk with the bytes and lines sent so far.
        Only a path is sent again after a 429 (it is re-read); other sources, and
        any connection error after the body started, raise: an all-or-nothing
        import that failed wrote nothing, so sending it again is your decision.
        """
        content_type = rq.import_content_type(source, format)

        def body() -> AsyncIterator[bytes]:
            return _upload(source, progress)  # a path is opened anew for each try

        response = await self._t.request(
            "POST",
            f"/v1/datasets/{rq.segment(dataset)}/import",
            params=rq.query(mode=mode, on_error=on_error),
            content=body,
            headers={"Content-Type": content_type},
            idempotency_key=None,
            timeouts=httpx.Timeout(self._t.timeout, read=None),
            resendable=rq.rereadable(source),
        )
        return ImportReport.model_validate(rq.loads(response.content))

    async def export(
        self,
        dataset: str,
        destination: str | Path | IO[bytes],
        *,
        format: str = "ndjson",
        envelope: bool = False,
        spreadsheet_safe: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ExportResult:
        """Stream every record (bare data, or ``{id, version, data}`` with ``envelope``) to
        a path or a binary file; retried until the first byte, then streamed as is.

        ``format``: ndjson, csv, or for analytics parquet (a Parquet file) or arrow (an
        Arrow IPC stream), typed columns whose records the result does not count
        (``records`` is None; the file's metadata holds the row count).
        ``spreadsheet_safe`` (CSV only) prefixes text cells that spreadsheet software
        would run as formulas with ``'``; such a file no longer imports back unchanged."""
        params = rq.query(
            format=format,
            envelope="true" if envelope else None,
            csv="spreadsheet" if spreadsheet_safe else None,
        )
        response = await self._t.request(
            "GET",
            f"/v1/datasets/{rq.segment(dataset)}/export",
            params=params,
            stream=True,
            timeouts=httpx.Timeout(self._t.timeout, read=300.0),
        )
        text = format in rq.TEXT_EXPORTS
        sent, lines = await _save(response, destination, progress, count_lines=text)
        return ExportResult(
            int(response.headers.get("x-entrepot-seq", "0")),
            response.headers.get("x-entrepot-incarnation"),
            sent,
            lines if text else None,
        )


async def _save(
    response: httpx.Response,
    destination: str | Path | IO[bytes],
    progress: ProgressCallback | None,
    *,
    count_lines: bool = True,
) -> tuple[int, int]:
    """Write a streamed answer to a path or a binary file, then close it; (bytes, lines)."""
    try:
        if isinstance(destination, str | Path):
            # A local file, written a chunk at a time as the answer streams in.
            with Path(destination).open("wb") as sink:  # noqa: ASYNC230
                return await _drain(response, sink, progress, count_lines)
        return await _drain(response, destination, progress, count_lines)
    finally:
        await response.aclose()


async def _drain(
    response: httpx.Response,
    sink: IO[bytes],
    progress: ProgressCallback | None,
    count_lines: bool,
) -> tuple[int, int]:
    sent = lines = 0
    async for chunk in response.aiter_bytes():
        sink.write(chunk)
        sent += len(chunk)
        if count_lines:  # a Parquet or Arrow file's newline bytes are no records
            lines += chunk.count(b"\n")
        if progress is not None:
            progress(Transfer(sent, lines))
    return sent, lines


async def _upload(
    source: rq.ImportSource, progress: ProgressCallback | None
) -> AsyncIterator[bytes]:
    sent = lines = 0
    for chunk, count in rq.import_chunks(source):
        sent += len(chunk)
        lines += count
        yield chunk
        if progress is not None:
            progress(Transfer(sent, lines))


class AsyncChanges(_AsyncNamespace):
    """The change feed: pages after a ``seq``, and a follower that never misses one."""

    async def list(
        self,
        dataset: str,
        *,
        after: int = 0,
        limit: int | None = None,
        wait: float | None = None,
        incarnation: str | None = None,
    ) -> ChangePage:
        """Changes with ``seq > after``; with ``wait``, a long poll until one arrives."""
        timeout = httpx.Timeout(self._t.timeout, read=(wait or 0) + self._t.timeout)
        body = await self._t.json(
            "GET",
            f"/v1/datasets/{rq.segment(dataset)}/changes",
            params=rq.query(after=after, limit=limit, wait=wait or None, incarnation=incarnation),
            timeouts=timeout,
        )
        return ChangePage.model_validate(body)

    async def follow(
        self,
        dataset: str,
        *,
        since: int = 0,
        incarnation: str | None = None,
        checkpoint: CheckpointCallback | None = None,
        wait: float = 30.0,
        limit: int = 1000,
        until_idle: bool = False,
    ) -> AsyncIterator[Change]:
        """Every change after ``since``, in commit order, long-polling for new ones.

        ``checkpoint`` is called with the position reached once every change of a
        page has been handled (your loop body came back for the next): store it,
        and restart from it with ``since=`` and ``incarnation=``. ``until_idle``
        stops when the feed has nothing more (catch up, then return). A position
        the feed cannot continue from raises :class:`Gone`: resnapshot (export).
        """
        seq, current = since, incarnation
        while True:
            page = await self.list(
                dataset,
                after=seq,
                limit=limit,
                wait=None if until_idle else wait,
                incarnation=current,
            )
            for change in page.changes:
                yield change
            moved = page.last_seq != seq or page.incarnation != current
            seq, current = page.last_seq, page.incarnation or current
            if moved and checkpoint is not None:
                checkpoint(Checkpoint(seq, current))
            if until_idle and len(page.changes) < limit:
                return

    async def stream(
        self,
        dataset: str,
        *,
        since: int = 0,
        incarnation: str | None = None,
        checkpoint: CheckpointCallback | None = None,
    ) -> AsyncIterator[Change]:
        """Every change after ``since`` over Server-Sent Events: one long response, a
        change as soon as it commits (no polling). ``checkpoint`` is called after each
        change you handled. A broken stream is resumed from the last change seen
        (``Last-Event-ID``), with backoff; ``gone`` and ``error`` events raise their
        problem (:class:`Gone`: resnapshot).
        """
        seq, current = since, incarnation
        failures = 0
        while True:
            response = await self._t.request(
                "GET",
                f"/v1/datasets/{rq.segment(dataset)}/changes",
                params=rq.query(after=seq, incarnation=current),
                headers={"Accept": "text/event-stream"},
                stream=True,
                timeouts=httpx.Timeout(self._t.timeout, read=None),
            )
            current = current or response.headers.get("x-entrepot-incarnation")
            parser = EventParser()
            try:
                async for chunk in response.aiter_bytes():
                    for event in parser.feed(chunk):
                        if event.name in ("gone", "error"):
                            body = rq.loads(event.data.encode())
                            raise problem_from_document(int(body.get("status", 400)), body)
                        if event.name != "change":
                            continue
                        change = Change.model_validate(rq.loads(event.data.encode()))
                        failures = 0
                        yield change
                        seq = change.seq
                        if checkpoint is not None:
                            checkpoint(Checkpoint(seq, current))
            except httpx.TransportError as exc:
                cause: BaseException = exc
            else:
                cause = ConnectionError("the event stream ended")
            finally:
                await response.aclose()
            delay = self._t.retry.delay_after_error(failures, replayable=True, connected=True)
            if delay is None:
                raise ConnectionFailed("GET", str(response.url), cause)
            failures += 1
            await self._t.sleep(delay)

    async def ticket(self, dataset: str) -> StreamTicket:
        """A short-lived ticket that opens ``dataset``'s event stream, for a browser page
        this program serves (``EventSource`` sends no Authorization header)."""
        body = await self._t.json("POST", f"/v1/datasets/{rq.segment(dataset)}/changes/tickets")
        return StreamTicket.model_validate(body)


class AsyncApps(_AsyncNamespace):
    async def create(
        self,
        org: str,
        name: str,
        *,
        description: str | None = None,
        redirect_uris: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
    ) -> AppCreated:
        """Register an application; ``client_secret`` is in this answer only."""
        body = rq.compact(
            org=org,
            name=name,
            description=description,
            redirect_uris=list(redirect_uris) if redirect_uris is not None else None,
            scopes=list(scopes) if scopes is not None else None,
        )
        return AppCreated.model_validate(await self._t.json("POST", "/v1/apps", json=body))

    async def get(self, app: str) -> App:
        return App.model_validate(await self._t.json("GET", f"/v1/apps/{rq.segment(app)}"))

    def list(self, *, org: str | None = None, limit: int | None = None) -> AsyncPager[App]:
        return self._pager("/v1/apps", rq.query(org=org, limit=limit), App.model_validate)

    async def update(self, app: str, **changes: Any) -> App:
        """PATCH: ``description``, ``redirect_uris``, ``scopes``, ``disabled``, ``plan``."""
        return App.model_validate(
            await self._t.json("PATCH", f"/v1/apps/{rq.segment(app)}", json=changes)
        )

    async def delete(self, app: str) -> None:
        await self._t.request("DELETE", f"/v1/apps/{rq.segment(app)}")

    async def rotate_secret(self, app: str) -> ClientSecret:
        """A new OAuth client secret; the old one stops at once."""
        return ClientSecret.model_validate(
            await self._t.json("POST", f"/v1/apps/{rq.segment(app)}/rotate-secret")
        )

    async def usage(
        self,
        app: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        granularity: str | None = None,
        dataset: str | None = None,
    ) -> Usage:
        """Request counts by period, endpoint class, status and dataset (``from``/``to``;
        ``dataset``: only the requests to that one)."""
        params = rq.query(
            granularity=granularity,
            dataset=dataset,
            **{
                "from": start.isoformat() if start else None,
                "to": end.isoformat() if end else None,
            },
        )
        return Usage.model_validate(
            await self._t.json("GET", f"/v1/apps/{rq.segment(app)}/usage", params=params)
        )


class AsyncKeys(_AsyncNamespace):
    async def create(
        self,
        app: str,
        name: str,
        *,
        scopes: Iterable[str] | None = None,
        expires_at: datetime | None = None,
    ) -> KeyCreated:
        """Issue an API key; its secret ``key`` is in this answer only."""
        body = rq.compact(
            name=name,
            scopes=list(scopes) if scopes is not None else None,
            expires_at=expires_at.isoformat() if expires_at else None,
        )
        return KeyCreated.model_validate(
            await self._t.json("POST", f"/v1/apps/{rq.segment(app)}/keys", json=body)
        )

    def list(self, app: str, *, limit: int | None = None) -> AsyncPager[Key]:
        return self._pager(
            f"/v1/apps/{rq.segment(app)}/keys", rq.query(limit=limit), Key.model_validate
        )

    async def revoke(self, app: str, key_id: str) -> None:
        await self._t.request("DELETE", f"/v1/apps/{rq.segment(app)}/keys/{rq.segment(key_id)}")

    async def rotate(
        self, app: str, key_id: str, *, overlap_seconds: int | None = None
    ) -> KeyRotated:
        """A replacement key; the old one works ``overlap_seconds`` more."""
        return KeyRotated.model_validate(
            await self._t.json(
                "POST",
                f"/v1/apps/{rq.segment(app)}/keys/{rq.segment(key_id)}/rotate",
                json=rq.compact(overlap_seconds=overlap_seconds),
            )
        )


class AsyncAccessRequests(_AsyncNamespace):
    async def create(
        self, dataset: str, *, app: str, scopes: Iterable[str], reason: str | None = None
    ) -> AccessRequest:
        body = rq.compact(app=app, scopes=list(scopes), reason=reason)
        return AccessRequest.model_validate(
            await self._t.json(
                "POST", f"/v1/datasets/{rq.segment(dataset)}/access-requests", json=body
            )
        )

    async def get(self, request_id: str) -> AccessRequest:
        return AccessRequest.model_validate(
            await self._t.json("GET", f"/v1/access-requests/{rq.segment(request_id)}")
        )

    def list(
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        app: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[AccessRequest]:
        params = rq.query(status=status, dataset=dataset, app=app, limit=limit)
        return self._pager("/v1/access-requests", params, AccessRequest.model_validate)

    async def approve(
        self,
        request_id: str,
        *,
        note: str | None = None,
        scopes: Iterable[str] | None = None,
        fields: Iterable[str] | None = None,
        row_filter: Mapping[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> AccessRequest:
        """Approve, optionally narrowing the grant (scopes, visible fields, rows, expiry)."""
        body = rq.compact(
            note=note,
            scopes=list(scopes) if scopes is not None else None,
            fields=list(fields) if fields is not None else None,
            row_filter=dict(row_filter) if row_filter is not None else None,
            expires_at=expires_at.isoformat() if expires_at else None,
        )
        return AccessRequest.model_validate(
            await self._t.json(
                "POST", f"/v1/access-requests/{rq.segment(request_id)}/approve", json=body
            )
        )

    async def reject(self, request_id: str, *, note: str | None = None) -> AccessRequest:
        return AccessRequest.model_validate(
            await self._t.json(
                "POST",
                f"/v1/access-requests/{rq.segment(request_id)}/reject",
                json=rq.compact(note=note),
            )
        )


class AsyncGrants(_AsyncNamespace):
    def list(
        self, *, app: str | None = None, dataset: str | None = None, limit: int | None = None
    ) -> AsyncPager[Grant]:
        params = rq.query(app=app, dataset=dataset, limit=limit)
        return self._pager("/v1/grants", params, Grant.model_validate)

    async def get(self, grant_id: str) -> Grant:
        return Grant.model_validate(await self._t.json("GET", f"/v1/grants/{rq.segment(grant_id)}"))

    async def revoke(self, grant_id: str) -> None:
        await self._t.request("DELETE", f"/v1/grants/{rq.segment(grant_id)}")


class AsyncWebhooks(_AsyncNamespace):
    async def create(
        self,
        app: str,
        *,
        url: str,
        datasets: Iterable[str],
        events: Iterable[str] | None = None,
    ) -> WebhookCreated:
        """Subscribe ``url``; the signing ``secret`` is in this answer only."""
        body = rq.compact(
            url=url, datasets=list(datasets), events=list(events) if events is not None else None
        )
        return WebhookCreated.model_validate(
            await self._t.json("POST", f"/v1/apps/{rq.segment(app)}/webhooks", json=body)
        )

    def list(self, app: str, *, limit: int | None = None) -> AsyncPager[Webhook]:
        return self._pager(
            f"/v1/apps/{rq.segment(app)}/webhooks", rq.query(limit=limit), Webhook.model_validate
        )

    async def get(self, webhook: str) -> Webhook:
        return Webhook.model_validate(
            await self._t.json("GET", f"/v1/webhooks/{rq.segment(webhook)}")
        )

    async def update(self, webhook: str, **changes: Any) -> Webhook:
        """PATCH: ``url``, ``datasets``, ``events``, ``disabled``."""
        return Webhook.model_validate(
            await self._t.json("PATCH", f"/v1/webhooks/{rq.segment(webhook)}", json=changes)
        )

    async def delete(self, webhook: str) -> None:
        await self._t.request("DELETE", f"/v1/webhooks/{rq.segment(webhook)}")

    def deliveries(
        self, webhook: str, *, status: str | None = None, limit: int | None = None
    ) -> AsyncPager[Delivery]:
        return self._pager(
            f"/v1/webhooks/{rq.segment(webhook)}/deliveries",
            rq.query(status=status, limit=limit),
            Delivery.model_validate,
        )

    async def retry_delivery(self, webhook: str, delivery: str) -> Delivery:
        path = f"/v1/webhooks/{rq.segment(webhook)}/deliveries/{rq.segment(delivery)}/retry"
        return Delivery.model_validate(await self._t.json("POST", path))

    async def replay(self, webhook: str, *, dataset: str, from_seq: int) -> Replayed:
        return Replayed.model_validate(
            await self._t.json(
                "POST",
                f"/v1/webhooks/{rq.segment(webhook)}/replay",
                json={"dataset": dataset, "from_seq": from_seq},
            )
        )

    async def rotate_secret(
        self, webhook: str, *, overlap_seconds: int | None = None
    ) -> SecretRotated:
        return SecretRotated.model_validate(
            await self._t.json(
                "POST",
                f"/v1/webhooks/{rq.segment(webhook)}/rotate-secret",
                json=rq.compact(overlap_seconds=overlap_seconds),
            )
        )


class AsyncAudit(_AsyncNamespace):
    def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        request_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        org: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[AuditEntry]:
        """Audit entries, newest first; ``actor``, ``action``, ``target``: a prefix ends in *."""
        params = _audit_filters(actor, action, target, outcome, request_id, since, until, org)
        return self._pager(
            "/v1/audit", [*params, *rq.query(limit=limit)], AuditEntry.model_validate
        )

    async def export(
        self,
        destination: str | Path | IO[bytes],
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        request_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        org: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Transfer:
        """Every matching entry as NDJSON, newest first, streamed to a path or a binary file."""
        params = _audit_filters(actor, action, target, outcome, request_id, since, until, org)
        response = await self._t.request(
            "GET",
            "/v1/audit/export",
            params=params,
            stream=True,
            timeouts=httpx.Timeout(self._t.timeout, read=300.0),
        )
        return Transfer(*await _save(response, destination, progress))


def _audit_filters(
    actor: str | None,
    action: str | None,
    target: str | None,
    outcome: str | None,
    request_id: str | None,
    since: datetime | None,
    until: datetime | None,
    org: str | None,
) -> Params:
    return rq.query(
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        request_id=request_id,
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
        org=org,
    )


class AsyncPlans(_AsyncNamespace):
    async def create(
        self,
        name: str,
        *,
        rate_per_second: float,
        burst: int,
        daily_quota: int | None = None,
        monthly_quota: int | None = None,
    ) -> Plan:
        body = rq.compact(
            name=name,
            rate_per_second=rate_per_second,
            burst=burst,
            daily_quota=daily_quota,
            monthly_quota=monthly_quota,
        )
        return Plan.model_validate(await self._t.json("POST", "/v1/plans", json=body))

    async def get(self, name: str) -> Plan:
        return Plan.model_validate(await self._t.json("GET", f"/v1/plans/{rq.segment(name)}"))

    def list(self, *, limit: int | None = None) -> AsyncPager[Plan]:
        return self._pager("/v1/plans", rq.query(limit=limit), Plan.model_validate)

    async def update(self, name: str, **changes: Any) -> Plan:
        return Plan.model_validate(
            await self._t.json("PATCH", f"/v1/plans/{rq.segment(name)}", json=changes)
        )

    async def delete(self, name: str) -> None:
        await self._t.request("DELETE", f"/v1/plans/{rq.segment(name)}")


class AsyncClient:
    """The Entrepot API. ``credential`` is an API key (a string or :class:`ApiKey`) or
    :class:`ClientCredentials`; use as ``async with AsyncClient(url, key) as api: ...``.

    ``retry`` sets the retry policy (``RetryPolicy(attempts=1)`` disables
    retries); ``http`` lets you pass an ``httpx.AsyncClient`` of your own (proxies,
    TLS, transports); ``timeout`` is in seconds.
    """

    def __init__(
        self,
        base_url: str,
        credential: Credential | str | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.transport = AsyncTransport(
            base_url,
            credential,
            retry=retry,
            timeout=timeout,
            http=http,
            sleep=sleep,
            clock=clock,
            headers=headers,
        )
        self.orgs = AsyncOrgs(self.transport)
        self.users = AsyncUsers(self.transport)
        self.datasets = AsyncDatasets(self.transport)
        self.records = AsyncRecords(self.transport)
        self.bulk = AsyncBulk(self.transport)
        self.changes = AsyncChanges(self.transport)
        self.apps = AsyncApps(self.transport)
        self.keys = AsyncKeys(self.transport)
        self.access_requests = AsyncAccessRequests(self.transport)
        self.grants = AsyncGrants(self.transport)
        self.webhooks = AsyncWebhooks(self.transport)
        self.audit = AsyncAudit(self.transport)
        self.plans = AsyncPlans(self.transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.transport.close()

    async def import_records(
        self, dataset: str, source: rq.ImportSource, **options: Any
    ) -> ImportReport:
        """Shortcut for :meth:`AsyncBulk.import_records`."""
        return await self.bulk.import_records(dataset, source, **options)

    async def export(
        self, dataset: str, destination: str | Path | IO[bytes], **options: Any
    ) -> ExportResult:
        """Shortcut for :meth:`AsyncBulk.export`."""
        return await self.bulk.export(dataset, destination, **options)

    async def usage(self, app: str, **options: Any) -> Usage:
        """Shortcut for :meth:`AsyncApps.usage`."""
        return await self.apps.usage(app, **options)

    async def me(self) -> WhoAmI:
        """Who this client's credential is: its kind, scopes, app or person, and grants."""
        return WhoAmI.model_validate(await self.transport.json("GET", "/v1/me"))


def _json_headers(
    *, if_match: str | None = None, if_none_match: str | None = None
) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if if_match:
        headers["If-Match"] = if_match
    if if_none_match:
        headers["If-None-Match"] = if_none_match
    return headers


def _dataset_of(record: Record) -> str:
    if not record.dataset:
        raise ValueError("this record does not say its dataset: pass the dataset name")
    return record.dataset


__all__ = ["AsyncClient", "AsyncPager", "AsyncTransport"]
