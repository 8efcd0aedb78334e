"""HTTP for SEC EDGAR under its fair-access rules, with an injectable transport for offline tests.

* Identity: the SEC asks every automated client to declare who it is in the User-Agent
  ("Sample Company Name AdminContact@sample.com"); `validate_identity` refuses to run without one.
* Rate: at most 10 requests per second (`RateLimiter`, spacing requests >= 0.1 s apart).
* Retries: 429 and 5xx answers (and connection errors) are retried with exponential backoff,
  honouring a `Retry-After` header when the server sends one.
* Cache: every successful raw response body is kept on disk (`HttpCache`), keyed by URL, so a
  rerun makes no request twice. Archive documents never change; index-like URLs (submissions JSON,
  company_tickers.json) may carry a max age so new filings show up on a later day.

The transport is any object with `get(url, headers=..., timeout=...)` returning something with
`status_code`, `headers` and `content` (a `requests.Session` does); tests pass a fake.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from filingcontrast.errors import UserError

log = logging.getLogger(__name__)

SEC_MAX_RATE = 10.0  # requests per second, https://www.sec.gov/os/accessing-edgar-data
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a connection error, in words: requests wraps urllib3's
    MaxRetryError around e.g. a NameResolutionError, whose text repeats the pool's repr."""
    seen = exc
    while True:
        inner = getattr(seen, "reason", None) or (seen.args[0] if seen.args else None)
        if not isinstance(inner, BaseException) or inner is seen:
            break
        seen = inner
    if type(seen).__name__ == "NameResolutionError" or "resolve" in str(seen).lower():
        return "cannot resolve the host name (no network or DNS here?)"
    if isinstance(seen, TimeoutError) or "timed out" in str(seen).lower():
        return "timed out"
    # urllib3 puts "HTTPSConnection(host=..., port=...): " before the reason: keep the reason.
    return re.sub(r"^HTTPS?Connection\([^)]*\): ", "", str(seen))


class Transport(Protocol):
    def get(self, url: str, headers: dict[str, str], timeout: float) -> Any: ...


class HttpError(UserError):
    """A non-retryable HTTP answer (404, 403 ...) or retries exhausted (e.g. no network).

    A UserError, so an unreachable EDGAR stops the command with one line; a single filing that
    cannot be fetched is caught by the ingester and listed under `failed`, and
    `edgar.MAX_FAILED_IN_A_ROW` of them in a row (the network went away mid-run) stop it."""

    def __init__(self, url: str, status: int | None, message: str):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.status = status


def validate_identity(identity: str | None) -> str:
    """The User-Agent identity from the argument or $SEC_IDENTITY; UserError when missing/bad."""
    identity = (identity or os.environ.get("SEC_IDENTITY") or "").strip()
    if not identity:
        raise UserError(
            "--identity: SEC EDGAR requires a declared identity; pass --identity "
            '"Your Name you@example.com" or set $SEC_IDENTITY'
        )
    if any(not c.isprintable() for c in identity):  # a newline cannot go in an HTTP header
        raise UserError(
            f"--identity {identity!r}: must be one line of printable text (it is sent as the "
            "User-Agent header)"
        )
    if not _EMAIL.search(identity):
        raise UserError(
            f"--identity {identity!r}: must contain a contact email address "
            '(e.g. "Jane Doe jane@example.com")'
        )
    if not _EMAIL.sub("", identity).strip(" <>,;()"):
        raise UserError(f"--identity {identity!r}: must contain a name as well as an email address")
    return identity


@dataclass
class RateLimiter:
    """Spaces calls at least 1/rate seconds apart. `clock`/`sleep` are injectable for tests."""

    rate: float = SEC_MAX_RATE
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next: float = field(default=float("-inf"), init=False)

    def wait(self) -> None:
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1.0 / self.rate


class HttpCache:
    """Raw response bodies on disk: `DIR/ab/abcdef....bin` keyed by the URL's sha256."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.root / key[:2] / f"{key}.bin"

    def get(self, url: str, max_age: float | None = None) -> bytes | None:
        path = self.path(url)
        try:
            if max_age is not None and time.time() - path.stat().st_mtime > max_age:
                return None
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def missing_path(self, url: str) -> Path:
        return self.path(url).with_suffix(".404")

    def is_missing(self, url: str) -> bool:
        """True when an earlier run recorded a 404 for this (immutable) URL."""
        return self.missing_path(url).exists()

    def put_missing(self, url: str) -> None:
        path = self.missing_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(url + "\n")

    def drop(self, url: str) -> None:
        """Forget a cached body (one that turned out unusable)."""
        self.path(url).unlink(missing_ok=True)

    def put(self, url: str, body: bytes) -> None:
        path = self.path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(body)
        os.replace(tmp, path)  # a killed run never leaves a truncated cache entry


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class Client:
    """Polite, cached GETs. Counters `requests`, `cache_hits`, `retries` are for summaries/tests."""

    identity: str
    cache: HttpCache | None
    transport: Transport | None = None
    limiter: RateLimiter = field(default_factory=RateLimiter)
    max_retries: int = 5
    backoff: float = 1.0  # first retry waits this long, then doubles
    max_backoff: float = 60.0
    timeout: float = 30.0
    requests: int = 0
    cache_hits: int = 0
    retries: int = 0

    def __post_init__(self) -> None:
        self.identity = validate_identity(self.identity)
        if self.transport is None:
            import requests

            self.transport = requests.Session()

    def get(self, url: str, max_age: float | None = None, cache_404: bool = False) -> bytes:
        """The body of `url`, from the cache when present (and younger than max_age seconds).

        cache_404: remember a 404 too (for immutable archive URLs), so a rerun does not ask again.
        """
        if self.cache is not None:
            body = self.cache.get(url, max_age=max_age)
            if body is not None:
                self.cache_hits += 1
                return body
            if cache_404 and self.cache.is_missing(url):
                self.cache_hits += 1
                raise HttpError(url, 404, "HTTP 404 (cached)")
        try:
            body = self._fetch(url)
        except HttpError as exc:
            if cache_404 and exc.status == 404 and self.cache is not None:
                self.cache.put_missing(url)
            raise
        if self.cache is not None:
            self.cache.put(url, body)
        return body

    def get_json(self, url: str, max_age: float | None = None) -> Any:
        import json

        body = self.get(url, max_age=max_age)
        try:
            return json.loads(body)
        except ValueError as exc:
            # A maintenance page served with 200: not kept, so running again asks again.
            if self.cache is not None:
                self.cache.drop(url)
            raise HttpError(url, 200, f"response is not JSON ({exc})") from None

    def _fetch(self, url: str) -> bytes:
        headers = {"User-Agent": self.identity, "Accept-Encoding": "gzip, deflate"}
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            self.requests += 1
            last = attempt == self.max_retries
            try:
                resp = self.transport.get(url, headers=headers, timeout=self.timeout)
            except OSError as exc:  # requests' ConnectionError/Timeout derive from OSError
                if last:
                    raise HttpError(url, None, f"connection failed: {_root_cause(exc)}") from None
                self._sleep_before_retry(url, attempt, None, "connection failed")
                continue
            status = int(resp.status_code)
            if status == 200:
                return bytes(resp.content)
            if status in RETRY_STATUS and not last:
                wait = _retry_after(resp.headers.get("Retry-After"))
                self._sleep_before_retry(url, attempt, wait, f"HTTP {status}")
                continue
            hint = " (SEC refuses undeclared or too fast clients)" if status == 403 else ""
            raise HttpError(url, status, f"HTTP {status}{hint}")
        raise HttpError(url, None, "retries exhausted")  # pragma: no cover - loop always returns

    def _sleep_before_retry(
        self, url: str, attempt: int, retry_after: float | None, reason: str
    ) -> None:
        self.retries += 1
        delay = min(self.max_backoff, self.backoff * 2**attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if attempt == 0:  # once per request: a dead network should not look like a hang
            log.warning(
                "%s: %s; retrying up to %d times (next in %.0f s)",
                url, reason, self.max_retries, delay,
            )  # fmt: skip
        self.limiter.sleep(delay)
