"""EDGAR ingest against hand-built HTTP fixtures (tests/assets/edgar): no live calls."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from filingcontrast.corpus import edgar
from filingcontrast.corpus.calendar import sessions
from filingcontrast.corpus.http import Client, HttpCache, HttpError, RateLimiter, validate_identity
from filingcontrast.corpus.store import INDEX_TICKER, Store
from filingcontrast.errors import UserError

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "edgar"
IDENTITY = "Test Runner test@example.com"


@dataclass
class Resp:
    status_code: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class FakeTransport:
    """Serves ASSETS/<host>/<path> for a URL; `script[url]` answers come first (then the file)."""

    def __init__(self, script: dict[str, list[Resp]] | None = None):
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.script = {k: list(v) for k, v in (script or {}).items()}

    def get(self, url: str, headers: dict[str, str], timeout: float) -> Resp:
        self.calls.append((url, dict(headers)))
        if self.script.get(url):
            return self.script[url].pop(0)
        path = ASSETS / url.split("://", 1)[1]
        if path.is_file():
            return Resp(200, path.read_bytes())
        return Resp(404)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client(transport: FakeTransport, tmp_path: Path, clock: FakeClock | None = None) -> Client:
    clock = clock or FakeClock()
    return Client(
        IDENTITY,
        HttpCache(tmp_path / "cache"),
        transport=transport,
        limiter=RateLimiter(clock=clock.clock, sleep=clock.sleep),
    )


# -- fair access ------------------------------------------------------------------------------


def test_identity_required(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("SEC_IDENTITY", raising=False)
    transport = FakeTransport()
    with pytest.raises(UserError, match="identity"):
        edgar.ingest_edgar(tmp_path / "s.duckdb", ["AAPL"], "2019-01-01", transport=transport)
    with pytest.raises(UserError, match="email"):
        validate_identity("Jane Doe")
    with pytest.raises(UserError, match="name"):
        validate_identity("jane@example.com")
    with pytest.raises(UserError, match="one line of printable text"):  # was retried 5 times
        validate_identity("Jane Doe\njane@example.com")
    assert transport.calls == []
    monkeypatch.setenv("SEC_IDENTITY", "Jane Doe jane@example.com")
    assert validate_identity(None) == "Jane Doe jane@example.com"


def test_rate_limiter_spacing_with_fake_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10, clock=clock.clock, sleep=clock.sleep)
    stamps = []
    for i in range(25):
        limiter.wait()
        stamps.append(clock.now)
        clock.now += 0.01 if i % 2 else 0.3  # the caller's own work between requests
    gaps = np.diff(stamps)
    assert gaps.min() >= 0.1 - 1e-9
    # Over any second at most 10 requests start.
    assert all(np.searchsorted(stamps, s + 1.0) - i <= 10 for i, s in enumerate(stamps))


def test_retries_on_429_and_503_honouring_retry_after(tmp_path) -> None:
    url = edgar.TICKERS_URL
    transport = FakeTransport(
        {url: [Resp(429, headers={"Retry-After": "7"}), Resp(503), Resp(503)]}
    )
    clock = FakeClock()
    client = _client(transport, tmp_path, clock)
    body = client.get(url)
    assert b"AAPL" in body
    assert len(transport.calls) == 4 and client.retries == 3
    backoffs = [s for s in clock.sleeps if s > 0.11]
    assert backoffs == [7.0, 2.0, 4.0]  # Retry-After beats the 1 s backoff, then 2 s, 4 s
    assert all(h["User-Agent"] == IDENTITY for _, h in transport.calls)


def test_gives_up_after_max_retries_and_on_404(tmp_path) -> None:
    url = edgar.TICKERS_URL
    transport = FakeTransport({url: [Resp(500)] * 10})
    client = _client(transport, tmp_path)
    client.max_retries = 2
    with pytest.raises(HttpError, match="HTTP 500"):
        client.get(url)
    assert len(transport.calls) == 3
    with pytest.raises(HttpError) as err:
        client.get("https://www.sec.gov/nothing-here")
    assert err.value.status == 404


# -- ingest -----------------------------------------------------------------------------------


def _ingest(tmp_path: Path, transport: FakeTransport, **kw) -> dict:
    kw.setdefault("with_prices", False)
    return edgar.ingest_edgar(
        tmp_path / "s.duckdb",
        kw.pop("tickers", ["AAPL", "MSFT"]),
        kw.pop("since", "2019-01-01"),
        identity=IDENTITY,
        cache_dir=tmp_path / "cache",
        transport=transport,
        progress=False,
        **kw,
    )


def _fast(monkeypatch) -> None:
    """No real sleeping in ingest tests (the limiter's spacing is tested with a fake clock)."""
    monkeypatch.setattr("filingcontrast.corpus.http.RateLimiter.wait", lambda self: None)


def test_ingest_filings_documents_and_failures(tmp_path, monkeypatch) -> None:
    _fast(monkeypatch)
    transport = FakeTransport()
    summary = _ingest(tmp_path, transport)
    assert summary["filings"] == 3
    assert list(summary["failed"]) == ["0000789019-21-000002"]
    requested = [u for u, _ in transport.calls]
    assert not any("submissions-001" in u for u in requested)  # page predates --since
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        rows = {r["accession"]: r for r in store.query("SELECT * FROM filings")}
        assert set(rows) == {
            "0000320193-21-000010",
            "0000320193-21-000020",
            "0000789019-21-000001",
        }
        aapl = rows["0000320193-21-000010"]
        # The SGML header's 16:30:12 ET wins over the JSON's New-York-clock-with-Z value.
        assert aapl["accepted_at"] == dt.datetime(2021, 1, 27, 21, 30, 12, tzinfo=dt.UTC)
        assert aapl["items"] == ["2.02", "9.01"] and aapl["form"] == "8-K"
        assert aapl["url"].endswith("/320193/000032019321000010/d8k.htm")
        assert rows["0000320193-21-000020"]["form"] == "8-K/A"
        assert rows["0000320193-21-000020"]["items"] == ["5.02"]  # from the parser
        msft = rows["0000789019-21-000001"]
        assert msft["accepted_at"] == dt.datetime(2021, 1, 26, 21, 5, 33, tzinfo=dt.UTC)
        docs = store.query(
            "SELECT name, kind, exhibit_type, text FROM documents "
            "WHERE accession = '0000320193-21-000010' ORDER BY name"
        )
        assert [(d["name"], d["kind"], d["exhibit_type"]) for d in docs] == [
            ("d8k.htm", "main", None),
            ("dex991.htm", "exhibit", "EX-99.1"),
        ]
        assert "$111.4 billion" in docs[1]["text"] and "<p>" not in docs[1]["text"]
        companies = {r["ticker"]: r for r in store.query("SELECT * FROM companies")}
        assert companies["AAPL"]["cik"] == "320193"
        assert companies["AAPL"]["sector"] == "Electronic Computers"
        skips = store.query("SELECT DISTINCT skip_reason FROM events")
        assert skips == [{"skip_reason": "no_prices"}]  # recorded, not dropped


def test_share_classes_and_repeated_tickers_store_each_filing_once(tmp_path, monkeypatch) -> None:
    # Regression: GOOGL,GOOG-style tickers of one CIK (or a ticker given twice) stored each
    # filing twice over, relabelled with the last ticker, and the summary counted 2x filings.
    _fast(monkeypatch)
    tickers_json = (
        b'{"0": {"cik_str": 320193, "ticker": "AAPL", "title": "Apple Inc."},'
        b' "1": {"cik_str": 320193, "ticker": "AAPL2", "title": "Apple Inc."}}'
    )
    transport = FakeTransport({edgar.TICKERS_URL: [Resp(200, tickers_json)]})
    summary = _ingest(tmp_path, transport, tickers=["AAPL", "aapl", "AAPL2"])
    assert summary["tickers"] == ["AAPL"] and summary["same_company"] == {"AAPL2": "AAPL"}
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        rows = store.query("SELECT accession, ticker FROM filings ORDER BY 1")
        companies = store.query("SELECT cik, ticker FROM companies")
    assert summary["filings"] == len(rows) == 2
    assert {r["ticker"] for r in rows} == {"AAPL"}
    assert companies == [{"cik": "320193", "ticker": "AAPL"}]


def test_rerun_hits_cache_with_zero_requests(tmp_path, monkeypatch) -> None:
    _fast(monkeypatch)
    first = _ingest(tmp_path, FakeTransport())
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        before = store.frame("SELECT * FROM documents ORDER BY accession, name")
    transport = FakeTransport()
    second = _ingest(tmp_path, transport)
    # Everything, 404s of immutable archive URLs included, comes from the cache.
    assert transport.calls == [] and second["requests"] == 0
    assert second["cache_hits"] == first["requests"]
    assert second["failed"].keys() == first["failed"].keys()
    assert second["filings"] == first["filings"]
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        after = store.frame("SELECT * FROM documents ORDER BY accession, name")
    pd.testing.assert_frame_equal(before, after)


def test_rerun_of_successful_ingest_makes_no_request(tmp_path, monkeypatch) -> None:
    _fast(monkeypatch)
    _ingest(tmp_path, FakeTransport(), tickers=["AAPL"])
    transport = FakeTransport()
    summary = _ingest(tmp_path, transport, tickers=["AAPL"])
    assert transport.calls == [] and summary["requests"] == 0


def test_since_reaches_older_submission_pages(tmp_path, monkeypatch) -> None:
    _fast(monkeypatch)
    transport = FakeTransport()
    summary = _ingest(tmp_path, transport, tickers=["AAPL"], since="2018-01-01")
    assert any("submissions-001" in u for u, _ in transport.calls)
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        accs = {r["accession"] for r in store.query("SELECT accession FROM filings")}
    assert "0000320193-18-000005" in accs
    assert "0000320193-18-000099" in summary["failed"]  # neither .txt nor primary doc


def test_unknown_ticker_and_bad_dates(tmp_path, monkeypatch) -> None:
    _fast(monkeypatch)
    with pytest.raises(UserError, match="ZZZZ"):
        _ingest(tmp_path, FakeTransport(), tickers=["AAPL", "ZZZZ"])
    with pytest.raises(UserError, match="--since"):
        _ingest(tmp_path, FakeTransport(), since="2019-13-01")


class OfflineTransport:
    def get(self, url: str, headers: dict[str, str], timeout: float) -> Resp:
        raise ConnectionError(f"Failed to resolve {url.split('/')[2]!r}")


def test_unreachable_network_is_a_one_line_error(tmp_path, monkeypatch, capsys, caplog) -> None:
    from filingcontrast import cli

    no_wait = RateLimiter(clock=lambda: 0.0, sleep=lambda seconds: None)
    monkeypatch.setattr(
        edgar,
        "Client",
        lambda *a, **kw: Client(*a, **{**kw, "transport": OfflineTransport(), "limiter": no_wait}),
    )
    argv = ["ingest", "edgar", "--tickers", "AAPL", "--since", "2021-01-01", "--no-prices"]
    argv += ["--identity", IDENTITY, "--http-cache", str(tmp_path / "c")]
    assert cli.main([*argv, "--store", str(tmp_path / "s.duckdb")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err == (f"error: {edgar.TICKERS_URL}: connection failed: cannot resolve the host name "
                   "(no network or DNS here?)")  # fmt: skip
    # One note (a log warning, on stderr in the CLI) when the first request fails: the retries
    # take ~30 s and should not look like a hang. No store is left behind.
    notes = [r.getMessage() for r in caplog.records if r.name == "filingcontrast.corpus.http"]
    assert notes == [
        f"{edgar.TICKERS_URL}: connection failed; retrying up to 5 times (next in 1 s)"
    ]
    assert not (tmp_path / "s.duckdb").exists()


def test_connection_errors_are_named_by_their_root_cause() -> None:
    """Regression: the one-line error carried requests' and urllib3's wrappers ("HTTPSConnection
    Pool(host=..., port=443): Max retries exceeded ... (Caused by NameResolutionError(...")."""
    import socket

    import requests
    from urllib3.connection import HTTPSConnection
    from urllib3.connectionpool import HTTPSConnectionPool
    from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

    from filingcontrast.corpus.http import _root_cause

    conn, pool = HTTPSConnection("www.sec.gov", 443), HTTPSConnectionPool("www.sec.gov")
    gai = socket.gaierror(-2, "Name or service not known")
    dns = requests.ConnectionError(
        MaxRetryError(pool, "/x", NameResolutionError("www.sec.gov", conn, gai))
    )
    assert _root_cause(dns) == "cannot resolve the host name (no network or DNS here?)"
    down = NewConnectionError(
        conn, "Failed to establish a new connection: [Errno 101] Network is unreachable"
    )
    assert _root_cause(requests.ConnectionError(MaxRetryError(pool, "/x", down))) == (
        "Failed to establish a new connection: [Errno 101] Network is unreachable"
    )


class ArchivesOffline(FakeTransport):
    """The index answers, then the network is gone for every filing document."""

    def get(self, url: str, headers: dict[str, str], timeout: float) -> Resp:
        if "/Archives/" in url:
            raise ConnectionError("Network is unreachable")
        return super().get(url, headers, timeout)


def test_network_lost_mid_ingest_stops_after_failures_in_a_row(tmp_path, monkeypatch) -> None:
    """Regression: with the network gone after the index, every remaining filing waited out
    its retries and was listed as failed; now a few failures in a row stop with one line."""
    _fast(monkeypatch)
    monkeypatch.setattr(Client, "_sleep_before_retry", lambda self, *args: None)
    monkeypatch.setattr(edgar, "MAX_FAILED_IN_A_ROW", 2)
    with pytest.raises(UserError, match=r"2 filings in a row could not be fetched .*0 stored"):
        _ingest(tmp_path, ArchivesOffline())


def test_prices_extra_missing_is_a_user_error(tmp_path, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_yfinance(name, *args, **kwargs):
        if name == "yfinance":
            raise ImportError("no yfinance")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yfinance)
    transport = FakeTransport()
    with pytest.raises(UserError, match=r"filingcontrast\[yfinance\]"):
        _ingest(tmp_path, transport, with_prices=True)
    assert transport.calls == []  # refused before any request


def test_ingest_with_fake_yfinance_computes_events(tmp_path, monkeypatch) -> None:
    _fast(monkeypatch)
    calls = []

    def download(tickers, start, end=None, auto_adjust=True, **kw):
        calls.append({"tickers": list(tickers), "auto_adjust": auto_adjust})
        days = pd.DatetimeIndex(sessions("2020-01-01", "2021-12-31"), name="Date")
        rng = np.random.default_rng(0)
        cols = pd.MultiIndex.from_product([["Adj Close", "Close"], tickers])
        data = np.exp(np.cumsum(rng.normal(0, 0.01, (len(days), len(cols))), axis=0)) * 100
        return pd.DataFrame(data, index=days, columns=cols)

    summary = _ingest(tmp_path, FakeTransport(), with_prices=True, download=download)
    assert calls[0]["auto_adjust"] is False and "SPY" in calls[0]["tickers"]
    assert summary["events"]["with_return"] > 0
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        assert store.count("prices") > 0
        idx = store.query("SELECT count(*) AS n FROM prices WHERE ticker = ?", [INDEX_TICKER])
        assert idx[0]["n"] > 400
        ev = store.query(
            "SELECT day0, abnormal_ret FROM events WHERE accession = '0000320193-21-000010' "
            "AND \"window\" = '0_1' AND method = 'market_adjusted'"
        )[0]
        assert ev["day0"] == dt.date(2021, 1, 28) and ev["abnormal_ret"] is not None


def test_sgml_header_parse() -> None:
    path = ASSETS / "www.sec.gov/Archives/edgar/data/320193/000032019321000010"
    sub = edgar.parse_sgml((path / "0000320193-21-000010.txt").read_text())
    assert sub.accession == "0000320193-21-000010" and sub.form == "8-K"
    assert sub.cik == "320193" and sub.company == "Apple Inc."
    assert sub.accepted_at.isoformat() == "2021-01-27T16:30:12-05:00"
    assert [d.type for d in sub.documents] == ["8-K", "EX-99.1", "GRAPHIC", "EX-101.INS"]


def _submission(*docs: tuple[str | None, str | None, str]) -> edgar.SgmlSubmission:
    """parse_sgml of <DOCUMENT>s given as (type or None, filename or None, body)."""
    blocks = "".join(
        "<DOCUMENT>\n"
        + (f"<TYPE>{typ}\n" if typ is not None else "")
        + f"<SEQUENCE>{i + 1}\n"
        + (f"<FILENAME>{name}\n" if name is not None else "")
        + f"<TEXT>\n{body}\n</TEXT>\n</DOCUMENT>\n"
        for i, (typ, name, body) in enumerate(docs)
    )
    return edgar.parse_sgml(
        f"<SEC-HEADER>\nCONFORMED SUBMISSION TYPE:\t8-K\n</SEC-HEADER>\n{blocks}"
    )


MAIN = "<html><body><p>FORM 8-K</p><p>Item 8.01 Other Events</p><p>We moved.</p></body></html>"
EX99 = "<html><body><p>Press release: we moved.</p></body></html>"


def test_first_document_without_an_8k_type_is_the_main_one() -> None:
    # Old submissions may leave the 8-K's <TYPE> out: the first document is then the main one.
    sub = _submission((None, "d8k.txt", MAIN), ("EX-99.1", "ex991.htm", EX99))
    docs = edgar.submission_documents(sub, "0000000001-21-000001")
    assert [(d["name"], d["kind"], d["exhibit_type"]) for d in docs] == [
        ("d8k.txt", "main", None),
        ("ex991.htm", "exhibit", "EX-99.1"),
    ]
    assert "We moved." in docs[0]["text"]


def test_xbrl_exhibits_are_not_stored_even_with_a_text_file_name() -> None:
    # EX-101.* is XBRL data whatever its file name (none, .txt): never a text exhibit.
    xbrl = "<xbrl><us-gaap:Revenues contextRef='c1'>1000</us-gaap:Revenues></xbrl>"
    sub = _submission(
        ("8-K", "d8k.htm", MAIN),
        ("EX-101.INS", None, xbrl),
        ("EX-101.SCH", "acme-20210301.txt", xbrl),
        ("EX-99.1", "ex991.htm", EX99),
    )
    docs = edgar.submission_documents(sub, "0000000001-21-000001")
    assert [(d["kind"], d["exhibit_type"]) for d in docs] == [
        ("main", None),
        ("exhibit", "EX-99.1"),
    ]


# -- retry policy, identity, cache ages (mutation audit) ---------------------------------------


@pytest.mark.parametrize(
    "status, retried", [(429, True), (500, True), (502, True), (503, True), (504, True),
                        (400, False), (403, False), (404, False), (410, False)],
)  # fmt: skip
def test_which_statuses_are_retried(tmp_path, status, retried) -> None:
    url = edgar.TICKERS_URL
    transport = FakeTransport({url: [Resp(status)]})
    clock = FakeClock()
    client = _client(transport, tmp_path, clock)
    if retried:
        assert b"AAPL" in client.get(url)
        assert len(transport.calls) == 2 and client.retries == 1 and clock.sleeps == [1.0]
    else:  # a 404 (or 403 ...) is an answer: asking again only burns the SEC's rate budget
        with pytest.raises(HttpError, match=f"HTTP {status}") as err:
            client.get(url)
        assert err.value.status == status
        assert len(transport.calls) == 1 and client.retries == 0 and clock.sleeps == []


def test_backoff_doubles_up_to_the_cap(tmp_path) -> None:
    url = edgar.TICKERS_URL
    transport = FakeTransport({url: [Resp(503)] * 20})
    clock = FakeClock()
    client = _client(transport, tmp_path, clock)
    client.max_retries = 8
    with pytest.raises(HttpError, match="HTTP 503"):
        client.get(url)
    assert len(transport.calls) == 9
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_a_short_retry_after_does_not_shorten_the_backoff(tmp_path) -> None:
    url = edgar.TICKERS_URL
    transport = FakeTransport({url: [Resp(503), Resp(503, headers={"Retry-After": "0"})]})
    clock = FakeClock()
    client = _client(transport, tmp_path, clock)
    assert b"AAPL" in client.get(url)
    assert clock.sleeps == [1.0, 2.0]


def test_retry_after_as_an_http_date(tmp_path) -> None:
    import email.utils
    import time

    url = edgar.TICKERS_URL
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    transport = FakeTransport({url: [Resp(503, headers={"Retry-After": when})]})
    clock = FakeClock()
    client = _client(transport, tmp_path, clock)
    assert b"AAPL" in client.get(url)
    assert len(clock.sleeps) == 1 and 25.0 <= clock.sleeps[0] <= 31.0


def test_403_names_the_sec_fair_access_rule(tmp_path) -> None:
    url = edgar.TICKERS_URL
    client = _client(FakeTransport({url: [Resp(403)]}), tmp_path)
    with pytest.raises(HttpError, match=r"HTTP 403 \(SEC refuses undeclared or too fast clients\)"):
        client.get(url)


class FlakyTransport(FakeTransport):
    """Raises `error` for the first `times` requests of `url`, then serves like FakeTransport."""

    def __init__(self, url: str, error: BaseException, times: int = 1) -> None:
        super().__init__()
        self.url, self.error, self.times = url, error, times

    def get(self, url: str, headers: dict[str, str], timeout: float) -> Resp:
        if url == self.url and self.times:
            self.times -= 1
            self.calls.append((url, dict(headers)))
            raise self.error
        return super().get(url, headers, timeout)


def test_a_read_timeout_is_retried(tmp_path) -> None:
    import requests

    url = edgar.TICKERS_URL
    for error in (TimeoutError("timed out"), requests.ReadTimeout("read timed out")):
        transport = FlakyTransport(url, error)
        client = _client(transport, tmp_path / type(error).__name__)
        assert b"AAPL" in client.get(url)
        assert len(transport.calls) == 2 and client.retries == 1


def test_identity_argument_wins_over_environment_and_needs_a_name(monkeypatch) -> None:
    monkeypatch.setenv("SEC_IDENTITY", "Env Person env@example.com")
    assert validate_identity("Jane Doe jane@example.com") == "Jane Doe jane@example.com"
    assert validate_identity("  Jane Doe <jane@example.com> ") == "Jane Doe <jane@example.com>"
    for bare in ("<jane@example.com>", "jane@example.com;", "(jane@example.com)"):
        with pytest.raises(UserError, match="must contain a name"):
            validate_identity(bare)


def test_user_agent_is_the_identity_on_every_request(tmp_path, monkeypatch) -> None:
    _fast(monkeypatch)
    transport = FakeTransport()
    _ingest(tmp_path, transport, tickers=["AAPL"])
    assert transport.calls and all(h.get("User-Agent") == IDENTITY for _, h in transport.calls)


_TXT_10 = (
    "https://www.sec.gov/Archives/edgar/data/320193/000032019321000010/0000320193-21-000010.txt"
)
_PRIMARY_10 = "https://www.sec.gov/Archives/edgar/data/320193/000032019321000010/d8k.htm"
_PRIMARY_HTML = b"<html><body><p>FORM 8-K</p><p>Item 2.02 Results</p></body></html>"


def test_connection_failure_is_not_a_missing_submission(tmp_path, monkeypatch) -> None:
    """A .txt that could not be fetched (network) must fail the filing, not fall back to the
    primary document with the JSON's unreliable time, and must not be remembered as a 404: the
    rerun stores it from the full submission. Failures with a success between them do not add
    up to MAX_FAILED_IN_A_ROW."""
    _fast(monkeypatch)
    monkeypatch.setattr(Client, "_sleep_before_retry", lambda self, *args: None)
    monkeypatch.setattr(edgar, "MAX_FAILED_IN_A_ROW", 2)
    flaky = FlakyTransport(_TXT_10, ConnectionError("Network is unreachable"), times=100)
    flaky.script[_PRIMARY_10] = [Resp(200, _PRIMARY_HTML)] * 10
    # AAPL 21-000010 fails, 21-000020 and MSFT 21-000001 succeed, MSFT 21-000002 fails.
    first = _ingest(tmp_path, flaky)
    assert set(first["failed"]) == {"0000320193-21-000010", "0000789019-21-000002"}
    assert first["filings"] == 2
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        assert not store.query("SELECT * FROM filings WHERE accession = '0000320193-21-000010'")
    again = FakeTransport({_PRIMARY_10: [Resp(200, _PRIMARY_HTML)] * 10})
    second = _ingest(tmp_path, again)
    assert list(second["failed"]) == ["0000789019-21-000002"]
    assert _TXT_10 in [u for u, _ in again.calls]
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        (row,) = store.query(
            "SELECT accepted_at FROM filings WHERE accession = '0000320193-21-000010'"
        )
        ndocs = store.count("documents")
        exhibits = store.query(
            "SELECT name FROM documents WHERE accession = '0000320193-21-000010' "
            "AND kind = 'exhibit'"
        )
    assert row["accepted_at"] == dt.datetime(2021, 1, 27, 21, 30, 12, tzinfo=dt.UTC)
    assert exhibits == [{"name": "dex991.htm"}] and ndocs >= 4


def test_since_and_until_are_inclusive(tmp_path, monkeypatch) -> None:
    _fast(monkeypatch)
    summary = _ingest(tmp_path, FakeTransport(), tickers=["AAPL"], since="2021-01-27",
                      until="2021-01-27")  # fmt: skip
    assert summary["filings"] == 1 and summary["failed"] == {}
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        accs = [r["accession"] for r in store.query("SELECT accession FROM filings")]
    assert accs == ["0000320193-21-000010"]
    with pytest.raises(UserError, match="--until 2021-01-26: before --since 2021-01-27"):
        _ingest(tmp_path, FakeTransport(), since="2021-01-27", until="2021-01-26")


def _aapl_submissions() -> dict:
    import json

    return json.loads((ASSETS / "data.sec.gov/submissions/CIK0000320193.json").read_text())


def test_older_page_ending_on_since_is_read(tmp_path, monkeypatch) -> None:
    import json

    _fast(monkeypatch)
    sub = _aapl_submissions()
    sub["filings"]["files"][0]["filingTo"] = "2018-02-01"  # the page's last day is --since
    url = edgar.SUBMISSIONS_URL.format(cik10="0000320193")
    transport = FakeTransport({url: [Resp(200, json.dumps(sub).encode())]})
    _ingest(tmp_path, transport, tickers=["AAPL"], since="2018-02-01")
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        accs = {r["accession"] for r in store.query("SELECT accession FROM filings")}
    assert "0000320193-18-000005" in accs  # filed 2018-02-01


def test_a_filing_listed_twice_is_fetched_and_counted_once(tmp_path, monkeypatch) -> None:
    import json

    _fast(monkeypatch)
    page_url = edgar.SUBMISSIONS_PAGE_URL.format(name="CIK0000320193-submissions-001.json")
    page = json.loads((ASSETS / "data.sec.gov/submissions/CIK0000320193-submissions-001.json")
                      .read_text())  # fmt: skip
    for key, value in [("accessionNumber", "0000320193-21-000010"), ("filingDate", "2021-01-27"),
                       ("reportDate", "2021-01-27"),
                       ("acceptanceDateTime", "2021-01-27T16:30:12.000Z"), ("form", "8-K"),
                       ("items", "2.02,9.01"), ("primaryDocument", "d8k.htm")]:  # fmt: skip
        page[key].append(value)  # also in `recent`: a page overlapping the recent list
    transport = FakeTransport({page_url: [Resp(200, json.dumps(page).encode())]})
    summary = _ingest(tmp_path, transport, tickers=["AAPL"], since="2018-01-01")
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        n = store.count("filings")
    assert summary["filings"] == n == 3
    assert [u for u, _ in transport.calls].count(_TXT_10) == 1


def test_index_json_is_refetched_after_a_day_archives_never(tmp_path, monkeypatch) -> None:
    import os
    import time

    _fast(monkeypatch)
    _ingest(tmp_path, FakeTransport(), tickers=["AAPL"])
    cache = HttpCache(tmp_path / "cache")
    index_urls = [edgar.TICKERS_URL, edgar.SUBMISSIONS_URL.format(cik10="0000320193")]
    archive = cache.path(_TXT_10)

    def age(hours: float) -> None:
        then = time.time() - hours * 3600
        for path in [cache.path(u) for u in index_urls] + [archive]:
            os.utime(path, (then, then))

    age(23)  # same day: nothing asked again
    transport = FakeTransport()
    _ingest(tmp_path, transport, tickers=["AAPL"])
    assert transport.calls == []
    age(25)  # a day later: new filings may be listed; archived documents do not change
    transport = FakeTransport()
    _ingest(tmp_path, transport, tickers=["AAPL"])
    assert sorted(u for u, _ in transport.calls) == sorted(index_urls)


def test_prices_cover_the_estimation_window_and_the_days_after_until(tmp_path, monkeypatch):
    """yfinance is asked from early enough for the market model (sessions day0-279 .. day0-30)
    and late enough for every window of a filing on --until; a download honouring start/end
    (end exclusive, as yfinance's) then gives every filing both abnormal returns."""
    _fast(monkeypatch)
    asked = []

    def download(tickers, start, end=None, auto_adjust=True, **kw):
        asked.append((start, end))
        days = pd.DatetimeIndex(sessions("2018-01-01", "2021-12-31"), name="Date")
        days = days[(days >= start) & ((days < end) if end else True)]
        rng = np.random.default_rng(0)
        cols = pd.MultiIndex.from_product([["Adj Close", "Close"], tickers])
        data = np.exp(np.cumsum(rng.normal(0, 0.01, (len(days), len(cols))), axis=0)) * 100
        return pd.DataFrame(data, index=days, columns=cols)

    _ingest(tmp_path, FakeTransport(), tickers=["AAPL"], since="2021-01-01", until="2021-03-01",
            with_prices=True, download=download)  # fmt: skip
    assert len(asked) == 1
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        rows = store.query(
            "SELECT accession, method, skip_reason FROM events WHERE \"window\" = '0_5' "
            "ORDER BY 1, 2"
        )
    assert rows == [
        {"accession": acc, "method": m, "skip_reason": None}
        for acc in ("0000320193-21-000010", "0000320193-21-000020")
        for m in ("market_adjusted", "market_model")
    ]


def test_rate_limiter_back_to_back_requests_are_spaced_exactly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10, clock=clock.clock, sleep=clock.sleep)
    stamps = []
    for _ in range(21):  # no work between requests: the limiter alone sets the pace
        limiter.wait()
        stamps.append(clock.now)
    assert np.allclose(np.diff(stamps), 0.1)
    assert stamps[-1] - stamps[0] == pytest.approx(2.0)  # 21 requests take 2 s at 10/s
    clock.now += 5.0  # an idle pause earns no burst afterwards
    t = clock.now
    limiter.wait()
    limiter.wait()
    assert clock.now == pytest.approx(t + 0.1)


def test_edgar_ingest_keeps_a_known_companys_sector(tmp_path, monkeypatch) -> None:
    _fast(monkeypatch)
    with Store(tmp_path / "s.duckdb") as store:
        store.upsert("companies", [{"cik": "320193", "ticker": "AAPL", "name": "Apple",
                                    "sector": "Technology", "source": "files"}])  # fmt: skip
    _ingest(tmp_path, FakeTransport(), tickers=["AAPL"])
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        assert store.query("SELECT name, sector FROM companies") == [
            {"name": "Apple", "sector": "Technology"}
        ]


def test_a_response_that_is_not_json_is_not_replayed_from_the_cache(tmp_path, monkeypatch):
    _fast(monkeypatch)
    garbled = FakeTransport({edgar.TICKERS_URL: [Resp(200, b"<html>Maintenance</html>")]})
    with pytest.raises(HttpError, match="not JSON"):
        _ingest(tmp_path, garbled, tickers=["AAPL"])
    summary = _ingest(tmp_path, FakeTransport(), tickers=["AAPL"])
    assert summary["filings"] == 2


def test_a_cache_write_killed_midway_leaves_no_truncated_entry(tmp_path, monkeypatch) -> None:
    from pathlib import Path as P

    cache = HttpCache(tmp_path / "cache")
    url = edgar.TICKERS_URL
    cache.put(url, b'{"old": 1}')
    real = P.write_bytes

    def killed(self, data):
        real(self, data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "write_bytes", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.put(url, b'{"new": 2, "padding": "' + b"x" * 100 + b'"}')
    monkeypatch.undo()
    assert cache.get(url) == b'{"old": 1}'


def test_documents_without_a_file_name_are_kept_under_a_numbered_name() -> None:
    # Old submissions often have no <FILENAME>: the 8-K and its press release are still text.
    sub = _submission(("8-K", None, MAIN), ("EX-99.1", None, EX99), ("GRAPHIC", "logo.jpg", "x"))
    docs = edgar.submission_documents(sub, "0000000001-21-000001")
    assert [(d["name"], d["kind"], d["exhibit_type"]) for d in docs] == [
        ("document-1.txt", "main", None),
        ("document-2.txt", "exhibit", "EX-99.1"),
    ]


def test_json_item_codes_are_split_and_trimmed(tmp_path) -> None:
    client = _client(FakeTransport(), tmp_path)
    row = {"accessionNumber": "0000320193-21-000010", "filingDate": "2021-01-27", "form": "8-K",
           "items": " 2.02 , 9.01,", "primaryDocument": "d8k.htm",
           "acceptanceDateTime": "2021-01-27T16:30:12.000Z"}  # fmt: skip
    filing, docs = edgar.fetch_filing(client, "0000320193", "AAPL", row)
    assert filing["items"] == ["2.02", "9.01"]
    assert filing["cik"] == "320193" and filing["filing_date"] == dt.date(2021, 1, 27)
    # The header's US/Eastern time, not the JSON's "Z" (here the New York clock).
    assert filing["accepted_at"] == dt.datetime(2021, 1, 27, 21, 30, 12, tzinfo=dt.UTC)
    assert [d["kind"] for d in docs] == ["main", "exhibit"]


@pytest.mark.parametrize(
    "stamp, utc",
    [
        ("20210702170000", dt.datetime(2021, 7, 2, 21, 0, tzinfo=dt.UTC)),  # EDT, UTC-4
        ("20211231093000", dt.datetime(2021, 12, 31, 14, 30, tzinfo=dt.UTC)),  # EST, UTC-5
        ("20210314120000", dt.datetime(2021, 3, 14, 16, 0, tzinfo=dt.UTC)),  # DST starts that day
    ],
)
def test_header_acceptance_time_is_new_york_time_in_summer_too(stamp, utc) -> None:
    sub = edgar.parse_sgml(f"<SEC-HEADER>\n<ACCEPTANCE-DATETIME>{stamp}\n</SEC-HEADER>\n")
    assert sub.accepted_at == utc
