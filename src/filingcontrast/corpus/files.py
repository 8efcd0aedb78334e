"""Your own filings into the store (`filingcontrast ingest files PATH [--prices CSV]`).

Two inputs (schema in docs/corpus.md):

* a manifest, `.jsonl` (one JSON object per line) or `.csv` (header row), with fields
  `id` (accession, unique), `ticker` and/or `cik`, `accepted_at` (ISO 8601 with a zone),
  `form` (8-K or 8-K/A), optional `items`, the document as `text` or `path` (relative to the
  manifest), optional `exhibits` (JSONL: [{"type", "text"|"path"}]), and optional `returns`
  (JSONL: {"0_1": 0.012, ...}; CSV: columns `abnormal_ret_0_1`, ...) stored as events with
  method "provided";
* a directory of `.htm`/`.html`/`.txt` 8-K files: accession, CIK and ticker come from the file
  name (`CIK_8K_YEAR_ACCESSION.ext`, `TICKER_ACCESSION.ext` or `ACCESSION.ext`) or the SGML
  header; the acceptance time from the SGML `<ACCEPTANCE-DATETIME>` (US/Eastern) when present.

Both build a filing's rows with `document_filing` (a manifest record's fields then replace what
the document gave), so a full SGML submission is split into its 8-K and exhibits either way, and
a document that is not an 8-K is skipped whatever the manifest says.

A malformed manifest (bad JSON, missing field, timestamp without zone, duplicate id, unknown item,
wrong CSV header, a company without a CIK) raises UserError "FILE:LINE: field x: what is wrong"
before anything is stored (every record is checked first). A document that is not a usable 8-K (empty, not an 8-K
form, unreadable) is skipped and listed with its reason in the summary; a run that stores nothing
at all is a UserError counting the reasons. Stored filings without a ticker or acceptance time
(no returns possible) get a one-line note on stderr. Each filing (row, documents, provided
returns) is written in one transaction, so a killed ingest rerun ends with the same rows as an
uninterrupted one; a re-ingest never erases a ticker, CIK or time an earlier source gave.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filingcontrast.config import parse_window, window_name
from filingcontrast.corpus.edgar import EASTERN, FORMS, parse_sgml
from filingcontrast.corpus.parse import NO_8K_MARKS, decode_bytes, document_text, is_binary
from filingcontrast.corpus.store import Store, document_row, remove_if_empty
from filingcontrast.errors import UserError
from filingcontrast.runtime import iter_jsonl, read_utf8

DOC_SUFFIXES = (".htm", ".html", ".txt")
MANIFEST_FIELDS = (
    "id",
    "ticker",
    "cik",
    "accepted_at",
    "form",
    "items",
    "text",
    "path",
    "company",
    "sector",
    "exhibits",
    "returns",
)
# Test hook: seconds to sleep after each stored filing (lets a test kill an ingest mid-way).
SLEEP_ENV = "FILINGCONTRAST_TEST_SLEEP_PER_FILING"
_ACCESSION = re.compile(r"\d{10}-\d{2}-\d{6}")


@dataclass
class FilingRows:
    """Everything one filing writes, committed together by `_write`."""

    filing: dict[str, Any]
    documents: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)
    company: str | None = None
    warnings: list[str] = field(default_factory=list)  # the parser's, e.g. no item headings
    sector: str | None = None  # a manifest's (pairs.same_sector pairs within a sector)


_ITEM = re.compile(r"\d{1,2}(\.\d{2})?")


# --------------------------------------------------------------------------------------------
# Field validation (each error names the file, line and field)


def parse_accepted_at(value: Any, where: str) -> dt.datetime:
    """ISO 8601 timestamp with a zone offset ("Z" allowed); UserError otherwise."""
    if value is not None and not isinstance(value, str):
        raise UserError(f"{where}: field accepted_at: expected an ISO 8601 string, got {value!r}")
    if not value or not value.strip():
        raise UserError(f"{where}: field accepted_at: missing (ISO 8601 with zone required)")
    text = value.strip()
    try:
        ts = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{where}: field accepted_at: {text!r} is not an ISO 8601 timestamp"
        ) from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise UserError(
            f"{where}: field accepted_at: {text!r} has no time zone "
            "(add one, e.g. 2021-07-02T17:00:00-04:00 or ...Z)"
        )
    try:
        ts.astimezone(dt.UTC).astimezone(EASTERN)
    except OverflowError:
        raise UserError(f"{where}: field accepted_at: {text!r} is out of range") from None
    return ts


def parse_items(value: Any, where: str) -> list[str] | None:
    """A list of known item codes (JSON list or "2.02;9.01" / "2.02,9.01"); None when absent."""
    from filingcontrast.corpus.parse import ITEM_TITLES

    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        # "Item 2.02; Item 9.01": drop the word first, else the split makes "Item" a code.
        value = re.sub(r"(?i)\bitem\b", " ", value)
        codes = [c.strip() for c in re.split(r"[;,\s]+", value) if c.strip()]
    elif isinstance(value, list):
        codes = [str(c).strip() for c in value]
    else:
        raise UserError(f"{where}: field items: expected a list of item codes, got {value!r}")
    codes = [c[4:].strip() if c.lower().startswith("item") else c for c in codes]
    for code in codes:
        if not _ITEM.fullmatch(code) or code not in ITEM_TITLES:
            raise UserError(
                f"{where}: field items: unknown item {code!r} "
                "(expected codes like 2.02 or, before 2004, 5)"
            )
    return list(dict.fromkeys(codes))


def parse_returns(value: Any, where: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    if value is None:
        return out
    if not isinstance(value, dict):
        raise UserError(f'{where}: field returns: expected an object like {{"0_1": 0.012}}')
    for given, ret in value.items():
        try:  # "00_01" is the window 0_1 (the name the event study and pairs.window use)
            window = window_name(parse_window(str(given)))
        except ValueError:
            raise UserError(
                f"{where}: field returns: window {given!r} must look like 0_1"
            ) from None
        if window in out:
            raise UserError(f"{where}: field returns: window {given!r} given twice (as {window})")
        if ret is None or ret == "":
            out[window] = None
            continue
        try:
            number = float(ret) if not isinstance(ret, bool) else math.nan
        except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
            number = math.nan
        if not math.isfinite(number):
            shown = repr(ret) if len(repr(ret)) <= 40 else repr(ret)[:37] + "..."
            raise UserError(f"{where}: field returns.{given}: {shown} is not a finite number")
        out[window] = number
    return out


def _string(value: Any, where: str, name: str, numbers: bool = False) -> str | None:
    """Field `name`'s value as a string (an integer too when `numbers`), None when absent;
    UserError for another type or text that is not valid Unicode (a lone surrogate in JSON)."""
    if value is None:
        return None
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise UserError(f"{where}: field {name}: must be a string, got {value!r:.60}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UserError(
            f"{where}: field {name}: invalid Unicode at character {exc.start} (lone surrogate)"
        ) from None
    return value


# --------------------------------------------------------------------------------------------
# Manifest reading


def _manifest_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each row of a JSONL or CSV manifest."""
    if path.suffix.lower() == ".jsonl":
        for line_no, rec in iter_jsonl(path):
            unknown = sorted(set(rec) - set(MANIFEST_FIELDS))
            if unknown:
                raise UserError(f"{path}:{line_no}: unknown field(s) {', '.join(unknown)}")
            yield line_no, rec
        return
    with io.StringIO(read_utf8(path, "save it as UTF-8"), newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in reader.fieldnames or []]  # "ID" is id
        allowed = set(MANIFEST_FIELDS) - {"exhibits", "returns"}
        bad = [h for h in header if h not in allowed and not h.startswith("abnormal_ret_")]
        missing = [h for h in ("id", "accepted_at", "form") if h not in header]
        repeated = sorted({h for h in header if header.count(h) > 1})
        if bad or missing or repeated or not ({"text", "path"} & set(header)):
            what = []
            if missing:
                what.append(f"missing column(s) {', '.join(missing)}")
            if repeated:
                what.append(f"repeated column(s) {', '.join(repeated)}")
            if not ({"text", "path"} & set(header)):
                what.append("need a text or path column")
            if "" in bad:
                what.append("an empty column name (a trailing comma?)")
            if [h for h in bad if h]:
                what.append(f"unknown column(s) {', '.join(h for h in bad if h)}")
            raise UserError(f"{path}:1: header: {'; '.join(what)} (see docs/corpus.md)")
        reader.fieldnames = header
        for row in reader:
            line_no = reader.line_num  # a quoted cell may span lines: the record's last line
            if None in row:  # DictReader puts cells beyond the header under the key None
                n = len(row[None])
                raise UserError(f"{path}:{line_no}: {n} more cells than the header")
            rec: dict[str, Any] = {k: v for k, v in row.items() if k in allowed and v != ""}
            rets = {
                k[len("abnormal_ret_") :]: v
                for k, v in row.items()
                if k.startswith("abnormal_ret_")
            }
            if rets:
                rec["returns"] = rets
            yield line_no, rec


def _manifest_path(base: Path, rel: str, where: str, field: str) -> Path:
    """A path a manifest gives: relative to the manifest's folder unless absolute."""
    if "\x00" in rel:  # the OS cannot name such a file ("embedded null byte")
        raise UserError(f"{where}: field {field}: {rel!r} contains a NUL character")
    return Path(rel) if Path(rel).is_absolute() else base / rel


def _read_bytes(base: Path, rel: str, where: str, field: str) -> bytes:
    """The bytes of a file named in a manifest (relative to the manifest); UserError if unreadable."""
    path = _manifest_path(base, rel, where, field)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{where}: field {field}: cannot read {path}: {exc.strerror}") from None


def _read_doc(base: Path, rel: str, where: str, field: str) -> str | None:
    """A document's text, decoded as the parser decodes it; None for a binary file."""
    raw = _read_bytes(base, rel, where, field)
    return None if is_binary(raw) else decode_bytes(raw)


@dataclass
class _Record:
    """A manifest record's fields, validated (before any filing of the manifest is stored)."""

    accession: str
    ticker: str | None
    cik: str | None
    accepted: dt.datetime
    form: str
    items: list[str] | None
    returns: dict[str, float | None]
    text: str | None
    doc_path: str | None
    company: str | None
    sector: str | None
    exhibits: list[dict[str, Any]]


def _accession(value: str) -> str:
    """An EDGAR accession number in its dashed form ("000095012310078896" ->
    "0000950123-10-078896"), so a manifest and a file name spell one filing the same way;
    any other id as given."""
    value = value.strip()
    if re.fullmatch(r"\d{18}", value):
        return f"{value[:10]}-{value[10:12]}-{value[12:]}"
    return value


def _record(rec: dict[str, Any], where: str, base: Path) -> _Record:
    """Every check a manifest record's fields allow without parsing its document; the files it
    names must be readable and its exhibits' files text."""
    accession = _accession(_string(rec.get("id"), where, "id", numbers=True) or "")
    if not accession:
        raise UserError(f"{where}: field id: missing (the accession number)")
    ticker = (_string(rec.get("ticker"), where, "ticker") or "").strip().upper() or None
    cik = (_string(rec.get("cik"), where, "cik", numbers=True) or "").strip() or None
    if cik is not None:
        if not (cik.isascii() and cik.isdigit()):  # "²" is a digit to isdigit, not to int
            raise UserError(f"{where}: field cik: {cik!r} is not a number")
        cik = str(int(cik))
    if not ticker and not cik:
        raise UserError(f"{where}: fields ticker/cik: give at least one")
    accepted = parse_accepted_at(rec.get("accepted_at"), where)
    form = (_string(rec.get("form"), where, "form") or "").strip().upper()
    if not form:
        raise UserError(f"{where}: field form: missing (8-K or 8-K/A)")
    items = parse_items(rec.get("items"), where)
    returns = parse_returns(rec.get("returns"), where)
    text = _string(rec.get("text"), where, "text")
    doc_path = _string(rec.get("path"), where, "path")
    if not text and not doc_path:
        raise UserError(f"{where}: fields text/path: give the document's text or a path to it")
    if not text:
        _readable(base, doc_path or "", where, "path")
    exhibits = rec.get("exhibits") or []
    _exhibit_docs(exhibits, accession, where, base)  # validates; rebuilt when stored
    return _Record(
        accession=accession,
        ticker=ticker,
        cik=cik,
        accepted=accepted,
        form=form,
        items=items,
        returns=returns,
        text=text,
        doc_path=doc_path,
        company=(_string(rec.get("company"), where, "company") or "").strip() or None,
        sector=(_string(rec.get("sector"), where, "sector") or "").strip() or None,
        exhibits=exhibits,
    )


def _readable(base: Path, rel: str, where: str, field: str) -> None:
    """UserError unless the file a manifest names can be opened for reading."""
    path = _manifest_path(base, rel, where, field)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UserError(f"{where}: field {field}: cannot read {path}: {exc.strerror}") from None


def _manifest_filing(
    rec: _Record, where: str, base: Path, cik_tickers: dict[str, str]
) -> FilingRows | str:
    """Store rows for one validated manifest record, or a skip reason (str) for an unusable
    document.

    The document (`text` or `path`) goes through `document_filing`, as a file in a folder does
    (a full SGML submission is split into its 8-K and exhibits; a document that is not an 8-K is
    skipped, whatever `form` and `items` say); the record's fields then replace what the
    document gave: id, ticker, cik, accepted_at, form, items, company.
    """
    accession, accepted, items = rec.accession, rec.accepted, rec.items
    raw: str | bytes
    if rec.text:
        raw, name = rec.text, f"{accession}.txt"
    else:
        path = rec.doc_path or ""
        raw, name = _read_bytes(base, path, where, "path"), Path(path).name
    if rec.form not in FORMS:
        return f"form {rec.form} is not an 8-K"
    rows = document_filing(
        raw, name, cik_tickers, accession=accession, items_given=items is not None, manifest=True
    )
    if isinstance(rows, str):
        return rows
    rows.documents += _exhibit_docs(rec.exhibits, accession, where, base)
    # The document's CIK (file name or SGML header) when the record has none.
    cik = rec.cik or rows.filing["cik"]
    for name_, value in (("company", rec.company), ("sector", rec.sector)):
        if value and not cik:
            raise UserError(f"{where}: field {name_}: needs cik (companies are keyed by CIK)")
    rows.filing.update(
        cik=cik,
        ticker=rec.ticker or rows.filing["ticker"] or (cik_tickers.get(cik) if cik else None),
        form=rec.form,
        accepted_at=accepted,
        filing_date=rows.filing["filing_date"] or accepted.astimezone(EASTERN).date(),
    )
    if items is not None:
        rows.filing["items"] = items
        rows.warnings = []  # the parser's doubts about item headings do not matter here
    rows.company = rec.company or rows.company
    rows.sector = rec.sector
    from filingcontrast.corpus.events import day0

    try:
        first_day = day0(accepted)
    except ValueError:  # outside the NYSE calendar: the provided return still counts
        first_day = None
    rows.events = [
        {
            "accession": accession,
            "day0": first_day,
            "window": window,
            "method": "provided",
            "abnormal_ret": ret,
            "skip_reason": None if ret is not None else "not_provided",
        }
        for window, ret in rec.returns.items()
    ]
    return rows


def _exhibit_docs(exhibits: Any, accession: str, where: str, base: Path) -> list[dict[str, Any]]:
    """`documents` rows of a manifest record's exhibits (JSONL: [{"type", "text"|"path"}])."""
    if not isinstance(exhibits, list):
        raise UserError(f'{where}: field exhibits: expected a list of {{"type", "text"|"path"}}')
    docs = []
    for i, ex in enumerate(exhibits):
        if not isinstance(ex, dict) or not ex.get("type"):
            raise UserError(f'{where}: field exhibits[{i}]: expected {{"type", "text"|"path"}}')
        ex_text = _string(ex.get("text"), where, f"exhibits[{i}].text")
        ex_path = _string(ex.get("path"), where, f"exhibits[{i}].path")
        if not ex_text and not ex_path:
            raise UserError(f"{where}: field exhibits[{i}]: give the exhibit's text or path")
        ex_raw = ex_text or _read_doc(base, ex_path or "", where, f"exhibits[{i}]")
        if ex_raw is None:
            raise UserError(f"{where}: field exhibits[{i}].path: {ex_path} is a binary file")
        ex_name = Path(ex_path).name if ex_path else f"{ex['type']}.txt"
        ex_type = (_string(ex["type"], where, f"exhibits[{i}].type") or "").upper()
        docs.append(document_row(accession, ex_name, "exhibit", ex_type, document_text(ex_raw)))
    return docs


def _parse(raw: str, name: str) -> Any:
    """parse_8k's result, or its one-line reason as a skip string."""
    from filingcontrast.corpus.parse import parse_8k

    try:
        return parse_8k(raw, name)
    except UserError as exc:
        return str(exc).split(": ", 1)[-1]


# --------------------------------------------------------------------------------------------
# Directory of 8-K files


def ids_from_filename(name: str) -> dict[str, str | None]:
    """accession / cik / ticker from `CIK_8K_YEAR_ACCESSION`, `TICKER_ACCESSION` or `ACCESSION`."""
    stem = Path(name).stem
    acc = _ACCESSION.search(stem)
    out: dict[str, str | None] = {
        "accession": acc.group(0) if acc else None,
        "cik": None,
        "ticker": None,
    }
    head = stem[: acc.start()].strip("_-") if acc else ""
    first = head.split("_")[0] if head else ""
    if first.isascii() and first.isdigit():
        out["cik"] = str(int(first))
    elif re.fullmatch(r"[A-Za-z][A-Za-z0-9.\-]{0,9}", first or ""):
        out["ticker"] = first.upper()
    return out


_CRAWLER_NAME = re.compile(r"(\d+)_8-?K(?:-?A)?_\d{4}_", re.I)


def _manifest_name_ids(name: str) -> dict[str, str | None]:
    """What a manifest document's file name may add to its record: the accession, and a CIK
    only from the strict EDGAR-crawler form `CIK_8K_YEAR_ACCESSION` — never a ticker or a
    leading number of any other name ("press_<acc>.htm" is no ticker PRESS, "20210127_<acc>"
    no CIK), since the record gives those itself."""
    ids = ids_from_filename(name)
    m = _CRAWLER_NAME.match(Path(name).stem)
    return {
        "accession": ids["accession"],
        "cik": str(int(m.group(1))) if m else None,
        "ticker": None,
    }


def document_filing(
    raw: str | bytes,
    name: str,
    cik_tickers: dict[str, str] | None = None,
    *,
    accession: str | None = None,
    fallback_accession: str | None = None,
    items_given: bool = False,
    manifest: bool = False,
) -> FilingRows | str:
    """Store rows for one 8-K document (HTML, text or a full SGML submission), or a skip reason.

    Every route builds a filing's rows here: a file in a folder (`file_filing`), a manifest
    record's document, and `digest.filing_doc_from_file` (compare). The accession is
    `accession` when given, else from `name` (`ids_from_filename`) or the SGML header, else
    `fallback_accession`; CIK and ticker likewise from the name or header (a ticker missing
    from the name is looked up by CIK in `cik_tickers`); acceptance time, filing date and
    company from the header; form and items from the 8-K parser. A full submission is split
    into its 8-K and text exhibits (`edgar.submission_documents`). With `items_given` (a
    manifest record that names the items) a text with neither an 8-K cover nor item headings,
    e.g. a bare press release, is taken as the 8-K's text; one that names another form, is
    binary or empty is still skipped. A `manifest` document's file name gives only the
    accession and the CIK of the strict EDGAR-crawler form (`_manifest_name_ids`).
    """
    from filingcontrast.corpus.edgar import submission_documents

    if not raw.strip():
        return "empty document"
    parsed = _parse(raw, name)
    if parsed == NO_8K_MARKS and items_given:
        parsed = None  # e.g. a bare press release: the record says 8-K and which items
    elif isinstance(parsed, str):
        return parsed
    text = decode_bytes(raw) if isinstance(raw, bytes) else raw  # as the parser read it
    ids = _manifest_name_ids(name) if manifest else ids_from_filename(name)
    sgml = "<SEC-HEADER>" in text[:5000] or "<DOCUMENT>" in text[:200000]
    sub = parse_sgml(text) if sgml else None
    accession = accession or ids["accession"] or (sub.accession if sub else None)
    accession = accession or fallback_accession
    if not accession:
        return "no accession number in the file name or SGML header"
    cik = ids["cik"] or (sub.cik if sub else None)
    ticker = ids["ticker"] or ((cik_tickers or {}).get(cik) if cik else None)
    docs = submission_documents(sub, accession) if sub and sub.documents else []
    if not docs:
        docs = [document_row(accession, name, "main", None, document_text(text))]
    filing = {
        "accession": accession,
        "cik": cik,
        "ticker": ticker,
        "form": parsed.form if parsed else "8-K",
        "accepted_at": sub.accepted_at if sub else None,
        "filing_date": sub.filed if sub else None,
        "items": list(parsed.items) if parsed else [],
        "source": "files",
        "url": None,
    }
    company = (sub.company if sub else None) or (parsed.company if parsed else None) or None
    return FilingRows(filing, docs, company=company, warnings=parsed.warnings if parsed else [])


def file_filing(
    path: Path,
    cik_tickers: dict[str, str] | None = None,
    fallback_accession: str | None = None,
) -> FilingRows | str:
    """Store rows for one 8-K file (see `document_filing`), or a skip reason."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    return document_filing(raw, Path(path).name, cik_tickers, fallback_accession=fallback_accession)


# --------------------------------------------------------------------------------------------
# The command


def _write(store: Store, rows: FilingRows) -> dict[str, Any]:
    """The filing, its documents, provided events and its company: one transaction.

    A new company is added; a known one only gets the ticker/name/sector it lacked (never
    replaced).
    Returns the filing row as stored (values an earlier ingest knew and this one lacks kept).
    """
    with store.transaction():
        filing = store.write_filing(rows.filing, rows.documents, rows.events)
        cik, ticker = filing.get("cik"), filing.get("ticker")
        if cik:
            company = {"cik": cik, "ticker": ticker, "name": rows.company, "sector": rows.sector}
            store.merge_companies([{**company, "source": "files"}])
    return filing


@dataclass
class _Tally:
    """What an ingest did, by file name or manifest line: stored, skipped (why), warnings, and
    how many stored filings lack what returns need (a ticker, an acceptance time)."""

    written: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)
    no_ticker: int = 0
    no_accepted_at: int = 0
    no_either: int = 0  # lacking one or both

    def add(self, store: Store, name: str, result: FilingRows | str, sleep: float) -> None:
        if isinstance(result, str):
            self.skipped[name] = result
            return
        stored = _write(store, result)
        self.written += 1
        self.no_ticker += stored.get("ticker") is None
        self.no_accepted_at += stored.get("accepted_at") is None
        self.no_either += stored.get("ticker") is None or stored.get("accepted_at") is None
        if result.warnings:
            self.warnings[name] = "; ".join(result.warnings)
        _test_pause(sleep, self.written)

    def skip_counts(self) -> str:
        """The skip reasons with their counts, most frequent first, on one line."""
        counts = Counter(self.skipped.values()).most_common()
        shown = "; ".join(f"{n} × {reason}" for reason, n in counts[:5])
        return shown + (f"; {len(counts) - 5} other reasons" if len(counts) > 5 else "")

    def missing_note(self) -> str | None:
        """One line when stored filings lack a ticker and/or acceptance time (no returns)."""
        if not self.no_either:
            return None
        lacks = [
            f"{n} {what}"
            for n, what in (
                (self.no_ticker, "without a ticker"),
                (self.no_accepted_at, "without an acceptance time"),
            )
            if n
        ]
        return (
            f"returns cannot be computed for {self.no_either} of the {self.written} filings "
            f"stored: {', '.join(lacks)}; give ticker and accepted_at in a manifest "
            "(.jsonl/.csv with a path to each file; docs/corpus.md, 'Your own filings') "
            "and ingest it"
        )


def _ingest_dir(store: Store, path: Path, tally: _Tally, sleep: float) -> None:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in DOC_SUFFIXES)
    if not files:
        others = sum(1 for _ in path.iterdir())
        ignored = f" ({others} other files ignored)" if others else " (the folder is empty)"
        raise UserError(f"{path}: no .htm/.html/.txt files{ignored}")
    cik_tickers = _cik_tickers(store)
    first: dict[str, str] = {}  # accession -> the file that stored it
    for file in files:
        result = file_filing(file, cik_tickers)
        if isinstance(result, FilingRows):
            acc = result.filing["accession"]
            if acc in first:
                result = f"duplicate accession {acc} (already stored from {first[acc]})"
            else:
                first[acc] = file.name
        tally.add(store, file.name, result, sleep)
        _learn_ticker(cik_tickers, result)


def _learn_ticker(cik_tickers: dict[str, str], result: FilingRows | str) -> None:
    """A company stored by this run lends its ticker to its later filings that lack one, as a
    rerun (which reads it from `companies`) would: a killed-and-rerun ingest ends with the rows
    of an uninterrupted one. The first known ticker stays, as in `Store.merge_companies`."""
    if isinstance(result, FilingRows) and result.filing.get("cik") and result.filing.get("ticker"):
        cik_tickers.setdefault(result.filing["cik"], result.filing["ticker"])


def _cik_tickers(store: Store) -> dict[str, str]:
    """CIK -> ticker of the companies already stored (a ticker the document does not name)."""
    rows = store.query("SELECT cik, ticker FROM companies WHERE ticker IS NOT NULL")
    return {r["cik"]: r["ticker"] for r in rows}


def _ingest_manifest(store: Store, path: Path, tally: _Tally, sleep: float) -> None:
    """Every record is checked before the first filing is stored, so a mistake on line N
    leaves the store as it was instead of holding lines 1 to N-1 without their returns."""
    seen: dict[str, int] = {}
    # (line, record, its rows when parsed early: see below)
    records: list[tuple[int, _Record, FilingRows | str | None]] = []
    cik_tickers = _cik_tickers(store)
    for line_no, rec in _manifest_records(path):
        where = f"{path}:{line_no}"
        record = _record(rec, where, path.parent)
        acc = record.accession
        if acc in seen:
            raise UserError(
                f"{where}: field id: duplicate accession {acc} (first on line {seen[acc]})"
            )
        seen[acc] = line_no
        rows = None
        if (record.company or record.sector) and not record.cik:
            # Whether the document supplies the CIK a company needs is known only from parsing
            # it (rare): parse it now, so that this check too runs before any write.
            rows = _manifest_filing(record, where, path.parent, cik_tickers)
        records.append((line_no, record, rows))
    if not records:
        raise UserError(f"{path}: no filings (the manifest has no records)")
    for line_no, record, rows in records:
        if rows is None:
            rows = _manifest_filing(record, f"{path}:{line_no}", path.parent, cik_tickers)
        tally.add(store, f"{path.name}:{line_no}", rows, sleep)
        _learn_ticker(cik_tickers, rows)


def _test_pause(seconds: float, written: int) -> None:
    """Kill-test hook ($FILINGCONTRAST_TEST_SLEEP_PER_FILING): report progress, then pause."""
    if seconds:
        print(f"filingcontrast-test: stored {written}", file=sys.stderr, flush=True)
        time.sleep(seconds)


def ingest_files(
    store_path: str | Path, path: str | Path, prices_csv: str | Path | None = None
) -> dict[str, Any]:
    """`filingcontrast ingest files PATH [--prices CSV]`: see the module docstring."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found")
    if path.is_file() and path.suffix.lower() not in (".jsonl", ".csv"):
        raise UserError(f"{path}: expected a .jsonl/.csv manifest or a directory of 8-K files")
    store_path = Path(store_path)
    created = not store_path.exists()
    try:
        return _ingest(store_path, path, prices_csv)
    except UserError:
        if created:
            remove_if_empty(store_path)  # a failed first ingest leaves no empty store behind
        raise


def _ingest(store_path: Path, path: Path, prices_csv: str | Path | None) -> dict[str, Any]:
    price_summary = None
    if prices_csv:
        from filingcontrast.corpus.prices import read_prices_csv, store_prices

        frame, report = read_prices_csv(prices_csv)  # validate before writing any filing
        with Store(store_path) as store:
            price_summary = {"stored": store_prices(store, frame), **report}
    sleep = float(os.environ.get(SLEEP_ENV) or 0)
    tally = _Tally()
    with Store(store_path) as store:
        if path.is_dir():
            _ingest_dir(store, path, tally, sleep)
        else:
            _ingest_manifest(store, path, tally, sleep)
    from filingcontrast.corpus.events import compute_events_in_store

    if not tally.written:
        prices_note = ""
        if price_summary is not None:  # stored before: earlier filings' returns use them
            compute_events_in_store(store_path)
            prices_note = f" ({price_summary['stored']} price rows were stored)"
        n, what = len(tally.skipped), "files" if path.is_dir() else "records"
        raise UserError(
            f"{path}: no filing stored, {n} {what} skipped: {tally.skip_counts()}{prices_note}"
        )
    summary: dict[str, Any] = {"filings": tally.written, "skipped": tally.skipped}
    if tally.warnings:  # stored, but the parser had doubts (e.g. a truncated file: no items)
        summary["warnings"] = tally.warnings
    if price_summary is not None:
        summary["prices"] = price_summary
    summary["events"] = compute_events_in_store(store_path)
    note = tally.missing_note()
    if note:
        summary["note"] = note  # the CLI prints it on stderr after the summary
    return summary
