"""8-K filings from SEC EDGAR into the store (`filingcontrast ingest edgar`).

Endpoints (all JSON/text, no scraping of HTML listings):

* `https://www.sec.gov/files/company_tickers.json` — ticker -> CIK.
* `https://data.sec.gov/submissions/CIK##########.json` — a company's filings as columns
  (`filings.recent`: accessionNumber, filingDate, acceptanceDateTime, form, items,
  primaryDocument, ...); older filings sit in the pages listed in `filings.files`.
* `https://www.sec.gov/Archives/edgar/data/CIK/ACCESSIONNODASH/ACCESSION.txt` — the full
  submission: the SGML header (with `<ACCEPTANCE-DATETIME>`, always US/Eastern) and every
  document (main 8-K, EX-99.x press releases ...). When it is unavailable the primary document
  `.../ACCESSIONNODASH/PRIMARYDOC` is used with the JSON acceptance time.

Why the SGML header for the acceptance time: the submissions JSON writes `acceptanceDateTime`
with a trailing "Z", but for some filers the value is the New York wall clock, not UTC, and the
string does not say which; a 4-hour error moves day 0 across the 16:00 close.

Fair access (see corpus/http.py): a declared identity as User-Agent, <= 10 requests/s, retries with
backoff on 429/5xx, and a disk cache so a rerun makes no request twice.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from filingcontrast.corpus.calendar import parse_date_arg
from filingcontrast.corpus.http import Client, HttpCache, HttpError, Transport, validate_identity
from filingcontrast.corpus.parse import (
    SgmlDocument,
    decode_bytes,
    document_text,
    parse_8k,
    sgml_documents,
)
from filingcontrast.corpus.store import Store, document_row
from filingcontrast.errors import UserError

TICKERS_URL = "https://www.sec.gov/files/company_tickers.json"
SUBMISSIONS_URL = "https://data.sec.gov/submissions/CIK{cik10}.json"
SUBMISSIONS_PAGE_URL = "https://data.sec.gov/submissions/{name}"
ARCHIVE_URL = "https://www.sec.gov/Archives/edgar/data/{cik}/{acc_nodash}/{name}"
FORMS = ("8-K", "8-K/A")
INDEX_MAX_AGE = 24 * 3600.0  # submissions/tickers JSON are refreshed daily; archives never change
EASTERN = ZoneInfo("America/New_York")
MAX_FAILED_IN_A_ROW = 5
"""Consecutive filings that could not be fetched before the ingest stops (the network or EDGAR
is gone: every further filing would only wait out its retries and fail too)."""
# Documents kept from a submission: the 8-K itself and text exhibits (not XBRL, not graphics).
_TEXT_EXTENSIONS = (".htm", ".html", ".txt", "")


# --------------------------------------------------------------------------------------------
# SGML (full submission .txt and the header of old .txt filings)


@dataclass
class SgmlSubmission:
    accession: str | None = None
    form: str | None = None
    cik: str | None = None
    company: str | None = None
    accepted_at: dt.datetime | None = None  # tz-aware (header times are US/Eastern)
    filed: dt.date | None = None
    documents: list[SgmlDocument] = field(default_factory=list)


def _header_value(header: str, key: str) -> str | None:
    m = re.search(rf"^[ \t]*{re.escape(key)}:[ \t]*(.+?)[ \t]*$", header, re.M)
    return m.group(1) if m else None


def parse_sgml(text: str) -> SgmlSubmission:
    """Header fields and documents of an EDGAR SGML submission (tolerant: missing -> None)."""
    out = SgmlSubmission()
    head_end = text.find("</SEC-HEADER>")
    header = text[: head_end if head_end >= 0 else min(len(text), 20000)]
    m = re.search(r"<ACCEPTANCE-DATETIME>\s*(\d{14})", header)
    if m:
        try:
            naive = dt.datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
            out.accepted_at = naive.replace(tzinfo=EASTERN)
        except ValueError:
            out.accepted_at = None
    out.accession = _header_value(header, "ACCESSION NUMBER")
    out.form = _header_value(header, "CONFORMED SUBMISSION TYPE")
    cik = _header_value(header, "CENTRAL INDEX KEY")
    out.cik = str(int(cik)) if cik and cik.isascii() and cik.isdigit() else None
    out.company = _header_value(header, "COMPANY CONFORMED NAME")
    filed = _header_value(header, "FILED AS OF DATE")
    if filed and re.fullmatch(r"\d{8}", filed):
        out.filed = dt.datetime.strptime(filed, "%Y%m%d").date()
    out.documents = sgml_documents(text)
    return out


def items_from_text(text: str, filename: str = "") -> list[str]:
    """Item codes found by the 8-K parser ([] when it cannot tell)."""
    try:
        return list(parse_8k(text, filename).items)
    except UserError:
        return []


def submission_documents(sub: SgmlSubmission, accession: str) -> list[dict[str, Any]]:
    """Store rows for the main 8-K and its text exhibits (first document of the form = main)."""
    docs: list[dict[str, Any]] = []
    have_main = False
    for i, d in enumerate(sub.documents):
        ext = Path(d.filename).suffix.lower()
        if ext not in _TEXT_EXTENSIONS or d.type.startswith("EX-101"):
            continue
        is_main = not have_main and (d.type in FORMS or d.type.startswith("8-K") or i == 0)
        if not is_main and not d.type.startswith("EX-"):
            continue
        text = document_text(d.body)
        if not text:
            continue
        have_main = have_main or is_main
        docs.append(
            document_row(
                accession,
                d.filename or f"document-{i + 1}.txt",
                "main" if is_main else "exhibit",
                None if is_main else d.type,
                text,
            )
        )
    return docs


# --------------------------------------------------------------------------------------------
# Submissions JSON


def cik10(cik: str | int) -> str:
    return f"{int(cik):010d}"


def ticker_map(client: Client) -> dict[str, dict[str, Any]]:
    """TICKER -> {"cik": "320193", "name": "Apple Inc."} from company_tickers.json."""
    data = client.get_json(TICKERS_URL, max_age=INDEX_MAX_AGE)
    rows = data.values() if isinstance(data, dict) else data
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        ticker = str(row.get("ticker", "")).upper()
        if ticker and ticker not in out:
            out[ticker] = {"cik": str(int(row["cik_str"])), "name": row.get("title")}
    return out


def _columns_to_rows(cols: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = [k for k, v in cols.items() if isinstance(v, list)]
    n = len(cols.get("accessionNumber", []))
    return [{k: (cols[k][i] if i < len(cols[k]) else None) for k in keys} for i in range(n)]


def company_filings(
    client: Client, cik: str, since: dt.date, until: dt.date | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(submissions JSON head, 8-K/8-K/A filing rows filed in [since, until])."""
    sub = client.get_json(SUBMISSIONS_URL.format(cik10=cik10(cik)), max_age=INDEX_MAX_AGE)
    filings = sub.get("filings", {})
    rows = _columns_to_rows(filings.get("recent", {}))
    for page in filings.get("files", []):
        if str(page.get("filingTo", "9999")) < since.isoformat():
            continue  # the whole page predates --since: no request
        url = SUBMISSIONS_PAGE_URL.format(name=page["name"])
        rows += _columns_to_rows(client.get_json(url, max_age=INDEX_MAX_AGE))
    keep = []
    seen: set[str] = set()
    for row in rows:
        filed = str(row.get("filingDate") or "")
        if row.get("form") not in FORMS or not filed:
            continue
        if filed < since.isoformat() or (until and filed > until.isoformat()):
            continue
        if row["accessionNumber"] in seen:
            continue
        seen.add(row["accessionNumber"])
        keep.append(row)
    keep.sort(key=lambda r: (r["filingDate"], r["accessionNumber"]))
    return sub, keep


def _json_accepted_at(value: str | None) -> dt.datetime | None:
    """acceptanceDateTime from the submissions JSON, read as written (UTC "Z"); fallback only."""
    if not value:
        return None
    try:
        ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)


def _split_items(value: str | None) -> list[str]:
    return [i.strip() for i in (value or "").split(",") if i.strip()]


def fetch_filing(
    client: Client, cik: str, ticker: str, row: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One filing's store rows (filing, documents) from the archive."""
    accession = row["accessionNumber"]
    acc_nodash = accession.replace("-", "")
    primary = row.get("primaryDocument") or ""
    primary_url = ARCHIVE_URL.format(cik=int(cik), acc_nodash=acc_nodash, name=primary)
    accepted = _json_accepted_at(row.get("acceptanceDateTime"))
    try:
        full_url = ARCHIVE_URL.format(cik=int(cik), acc_nodash=acc_nodash, name=f"{accession}.txt")
        raw = client.get(full_url, cache_404=True)
        sub = parse_sgml(decode_bytes(raw))
        docs = submission_documents(sub, accession)
        accepted = sub.accepted_at or accepted
    except HttpError as exc:
        if exc.status != 404 or not primary:
            raise
        body = decode_bytes(client.get(primary_url, cache_404=True))
        docs = [document_row(accession, primary, "main", None, document_text(body))]
    main = next((d for d in docs if d["kind"] == "main"), None)
    items = _split_items(row.get("items"))
    if not items and main is not None:
        items = items_from_text(main["text"], main["name"])
    filing = {
        "accession": accession,
        "cik": str(int(cik)),
        "ticker": ticker,
        "form": row.get("form"),
        "accepted_at": accepted,
        "filing_date": dt.date.fromisoformat(row["filingDate"]),
        "items": items,
        "source": "edgar",
        "url": primary_url if primary else None,
    }
    return filing, docs


# --------------------------------------------------------------------------------------------
# The command


def default_cache_dir() -> Path:
    from filingcontrast.model import cache_root

    return cache_root() / "edgar"


def ingest_edgar(
    store_path: str | Path,
    tickers: list[str],
    since: str | dt.date,
    until: str | dt.date | None = None,
    identity: str | None = None,
    cache_dir: str | Path | None = None,
    with_prices: bool = True,
    *,
    transport: Transport | None = None,
    client: Client | None = None,
    progress: bool = True,
    index_symbol: str | None = None,
    download: Any = None,
) -> dict[str, Any]:
    """`filingcontrast ingest edgar`: 8-K and 8-K/A filings of `tickers` filed in [since, until].

    Each filing (row + documents) is written in one transaction; a rerun resumes from the cache.
    Filings that cannot be fetched are listed in the summary's `failed` (never silently dropped).
    """
    identity = validate_identity(identity)  # refuse before any request
    since_d = parse_date_arg(since, "--since")
    until_d = parse_date_arg(until, "--until")
    if until_d and since_d and until_d < since_d:
        raise UserError(f"--until {until_d}: before --since {since_d}")
    tickers = list(dict.fromkeys(t.strip().upper() for t in tickers if t.strip()))
    if not tickers:
        raise UserError("--tickers: give at least one ticker, e.g. --tickers AAPL,MSFT")
    if with_prices and download is None:
        from filingcontrast.corpus.prices import _yf_download

        download = _yf_download()  # a missing optional extra fails now, not after the fetch
    if client is None:
        cache = HttpCache(Path(cache_dir) if cache_dir else default_cache_dir())
        client = Client(identity, cache, transport=transport)

    known = ticker_map(client)
    unknown = [t for t in tickers if t not in known]
    if unknown:
        raise UserError(
            f"--tickers: not in SEC company_tickers.json: {', '.join(unknown)} "
            "(delisted companies: use `ingest files` with your own documents)"
        )
    # Share classes of one company (GOOGL, GOOG) file the same 8-Ks under one CIK: each
    # filing is stored once, under the first of its tickers given.
    by_cik: dict[str, str] = {}
    same_company: dict[str, str] = {}
    for ticker in tickers:
        first = by_cik.setdefault(known[ticker]["cik"], ticker)
        if first != ticker:
            same_company[ticker] = first
    tickers = list(by_cik.values())
    work: list[tuple[str, str, dict[str, Any]]] = []
    companies = []
    for cik, ticker in by_cik.items():
        head, rows = company_filings(client, cik, since_d, until_d)
        companies.append(
            {
                "cik": cik,
                "ticker": ticker,
                "name": head.get("name") or known[ticker]["name"],
                "sector": head.get("sicDescription") or None,
                "source": "edgar",
            }
        )
        work += [(ticker, cik, row) for row in rows]

    from tqdm.auto import tqdm

    failed: dict[str, str] = {}
    written = 0
    with Store(store_path) as store:
        store.merge_companies(companies)
        bar = tqdm(work, desc="8-K filings", unit="filing", disable=not progress)
        in_a_row = 0
        for ticker, cik, row in bar:
            try:
                filing, docs = fetch_filing(client, cik, ticker, row)
            except HttpError as exc:
                failed[row["accessionNumber"]] = str(exc)
                in_a_row += 1
                if in_a_row >= MAX_FAILED_IN_A_ROW:
                    raise UserError(
                        f"{in_a_row} filings in a row could not be fetched (last: {exc}); "
                        f"{written} stored in {store_path}; run the same command again to "
                        "continue (fetched responses are cached)"
                    ) from None
                continue
            in_a_row = 0
            store.write_filing(filing, docs)
            written += 1
            bar.set_postfix(stored=written, failed=len(failed), requests=client.requests)
    summary: dict[str, Any] = {
        "tickers": tickers,
        **({"same_company": same_company} if same_company else {}),
        "filings": written,
        "failed": failed,
        "requests": client.requests,
        "cache_hits": client.cache_hits,
        "retries": client.retries,
    }
    if with_prices:
        from filingcontrast.corpus.prices import ingest_prices

        start = (since_d - dt.timedelta(days=500)).isoformat()  # room for the estimation window
        end = None if until_d is None else (until_d + dt.timedelta(days=20)).isoformat()
        summary["prices"] = ingest_prices(
            store_path,
            source="yfinance",
            tickers=tickers,
            since=start,
            until=end,
            index_symbol=index_symbol,
            download=download,
            recompute_events=False,
        )
    from filingcontrast.corpus.events import compute_events_in_store

    summary["events"] = compute_events_in_store(store_path)
    return summary
