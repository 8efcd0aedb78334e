"""`ingest files`: manifests, directories of 8-K files, bad input, and kill-and-rerun safety."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from filingcontrast.corpus import files
from filingcontrast.corpus.calendar import sessions
from filingcontrast.corpus.store import INDEX_TICKER, Store
from filingcontrast.errors import UserError

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "edgar-8k"

HTML_8K = """<html><body><p>UNITED STATES SECURITIES AND EXCHANGE COMMISSION</p><p>FORM 8-K</p>
<p>Item {item} {title}</p><p>{body}</p><p>SIGNATURE</p></body></html>"""


def sgml_8k(accession: str, cik: int, accepted: str, item: str = "8.01", exhibit: str = "") -> str:
    """A small full-submission .txt like EDGAR's (header + 8-K document [+ EX-99.1])."""
    ex = (
        f"<DOCUMENT>\n<TYPE>EX-99.1\n<SEQUENCE>2\n<FILENAME>ex991.htm\n<TEXT>\n"
        f"<html><body><p>{exhibit}</p></body></html>\n</TEXT>\n</DOCUMENT>\n"
        if exhibit
        else ""
    )
    main = HTML_8K.format(item=item, title="Other Events.", body=f"Company {cik} news {accession}.")
    return (
        f"<SEC-DOCUMENT>{accession}.txt : 20210101\n<SEC-HEADER>{accession}.hdr.sgml\n"
        f"<ACCEPTANCE-DATETIME>{accepted}\nACCESSION NUMBER:\t\t{accession}\n"
        f"CONFORMED SUBMISSION TYPE:\t8-K\nFILED AS OF DATE:\t\t{accepted[:8]}\n"
        f"\t\tCOMPANY CONFORMED NAME:\t\t\tCO {cik}\n\t\tCENTRAL INDEX KEY:\t\t\t{cik:010d}\n"
        f"</SEC-HEADER>\n<DOCUMENT>\n<TYPE>8-K\n<SEQUENCE>1\n<FILENAME>d8k.htm\n<TEXT>\n{main}\n"
        f"</TEXT>\n</DOCUMENT>\n{ex}</SEC-DOCUMENT>\n"
    )


def write_prices(path: Path, tickers: list[str], start="2020-06-01", end="2021-12-31") -> Path:
    days = sessions(start, end)
    rng = np.random.default_rng(1)
    rows = ["ticker,date,close,adj_close"]
    for t in [*tickers, INDEX_TICKER]:
        px = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
        rows += [f"{t},{d},{p:.4f},{p:.4f}" for d, p in zip(days, px)]
    path.write_text("\n".join(rows) + "\n")
    return path


def make_dir(root: Path, n: int = 12) -> Path:
    d = root / "filings"
    d.mkdir()
    for i in range(n):
        acc = f"0000000001-21-{i + 1:06d}"
        accepted = (dt.datetime(2021, 3, 1, 9) + dt.timedelta(days=i, hours=i % 9)).strftime(
            "%Y%m%d%H%M%S"
        )
        name = f"TK{i % 3}_{acc}.txt"
        (d / name).write_text(sgml_8k(acc, 1000 + i % 3, accepted, exhibit=f"Press {i}"))
    return d


def tables(path: Path) -> dict[str, pd.DataFrame]:
    with Store(path, read_only=True) as store:
        return {
            "filings": store.frame("SELECT * FROM filings ORDER BY accession"),
            "documents": store.frame("SELECT * FROM documents ORDER BY accession, name"),
            "events": store.frame('SELECT * FROM events ORDER BY accession, "window", method'),
        }


# -- directory ---------------------------------------------------------------------------------


def test_directory_ingest_with_prices(tmp_path) -> None:
    d = make_dir(tmp_path, n=6)
    (d / "TK0_0000000001-21-000901.htm").write_text("")  # empty
    (d / "TK0_0000000001-21-000902.htm").write_text(
        "<html><body><p>FORM 10-Q</p><p>Quarterly report</p></body></html>"
    )
    (d / "TK0_0000000001-21-000903.htm").write_text("<html><body><div><<<</")  # malformed
    (d / "notes.md").write_text("ignored: not an .htm/.txt file")
    prices = write_prices(tmp_path / "prices.csv", ["TK0", "TK1", "TK2"])
    summary = files.ingest_files(tmp_path / "s.duckdb", d, prices_csv=prices)
    assert summary["filings"] == 6
    assert set(summary["skipped"]) == {
        "TK0_0000000001-21-000901.htm",
        "TK0_0000000001-21-000902.htm",
        "TK0_0000000001-21-000903.htm",
    }
    assert "empty" in summary["skipped"]["TK0_0000000001-21-000901.htm"]
    assert "8-K" in summary["skipped"]["TK0_0000000001-21-000902.htm"]
    t = tables(tmp_path / "s.duckdb")
    f = t["filings"].set_index("accession")
    first = f.loc["0000000001-21-000001"]
    assert first["ticker"] == "TK0" and first["cik"] == "1000"
    assert list(first["items"]) == ["8.01"]
    # <ACCEPTANCE-DATETIME>20210301090000 is 09:00 US/Eastern = 14:00 UTC.
    assert pd.Timestamp(first["accepted_at"]) == pd.Timestamp("2021-03-01T14:00:00Z")
    assert (t["documents"]["kind"] == "exhibit").sum() == 6
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        companies = store.query("SELECT cik, ticker, name FROM companies ORDER BY cik")
    assert companies[0] == {"cik": "1000", "ticker": "TK0", "name": "CO 1000"}
    ok = t["events"][t["events"]["method"] == "market_adjusted"]
    assert ok["abnormal_ret"].notna().all()


def test_filename_patterns() -> None:
    assert files.ids_from_filename("1000180_8K_2010_0000950123-10-078896.htm") == {
        "accession": "0000950123-10-078896",
        "cik": "1000180",
        "ticker": None,
    }
    assert files.ids_from_filename("AAPL_0000320193-21-000010.txt")["ticker"] == "AAPL"
    assert files.ids_from_filename("0000320193-21-000010.htm")["cik"] is None
    assert files.ids_from_filename("random.htm")["accession"] is None


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared edgar-8k data absent")
def test_directory_of_real_filings(tmp_path) -> None:
    picks = sorted((SHARED / "filings").glob("*_8K_2006_*.txt"))[:4]
    picks += sorted((SHARED / "filings").glob("*_8K_2015_*.htm"))[:2]
    if len(picks) < 3:
        pytest.skip("not enough shared filings")
    d = tmp_path / "real"
    d.mkdir()
    for p in picks:  # links, not copies: the shared data stays outside the project
        (d / p.name).symlink_to(p)
    summary = files.ingest_files(tmp_path / "s.duckdb", d)
    assert summary["filings"] + len(summary["skipped"]) == len(picks)
    rows = tables(tmp_path / "s.duckdb")["filings"]
    for _, row in rows.iterrows():
        assert row["accession"] in {files.ids_from_filename(p.name)["accession"] for p in picks}
        if row["accession"] and str(row["accession"]).split("-")[1] == "06":
            assert pd.notna(row["accepted_at"])  # 2006 .txt submissions carry the header time


# -- manifests ---------------------------------------------------------------------------------


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _row(i: int, **kw) -> dict:
    row = {
        "id": f"0000000002-21-{i:06d}",
        "ticker": "ABC",
        "accepted_at": "2021-07-02T17:00:00-04:00",
        "form": "8-K",
        "text": HTML_8K.format(item="2.02", title="Results of Operations", body="Beat."),
    }
    row.update(kw)
    return row


def test_manifest_with_provided_returns(tmp_path) -> None:
    doc = tmp_path / "docs" / "x.htm"
    doc.parent.mkdir()
    doc.write_text(HTML_8K.format(item="5.02", title="Departure of Directors", body="Bye."))
    manifest = _jsonl(
        tmp_path / "m.jsonl",
        [
            _row(1, returns={"0_1": 0.012, "0_3": None}, items=["2.02", "9.01"]),
            _row(2, path="docs/x.htm", text=None, cik="0000001234", ticker=None),
            _row(3, form="10-K"),
            _row(4, exhibits=[{"type": "ex-99.1", "text": "<p>Record quarter.</p>"}]),
        ],
    )
    summary = files.ingest_files(tmp_path / "s.duckdb", manifest)
    assert summary["filings"] == 3
    assert summary["skipped"] == {"m.jsonl:3": "form 10-K is not an 8-K"}
    t = tables(tmp_path / "s.duckdb")
    f = t["filings"].set_index("accession")
    assert list(f.loc["0000000002-21-000001", "items"]) == ["2.02", "9.01"]
    assert list(f.loc["0000000002-21-000002", "items"]) == ["5.02"]  # parsed from the document
    assert f.loc["0000000002-21-000002", "cik"] == "1234"
    ev = t["events"]
    prov = ev[ev["method"] == "provided"].set_index("window")
    assert prov.loc["0_1", "abnormal_ret"] == pytest.approx(0.012)
    assert prov.loc["0_3", "skip_reason"] == "not_provided"
    assert pd.Timestamp(prov.loc["0_1", "day0"]).date() == dt.date(2021, 7, 6)
    docs = t["documents"]
    ex = docs[docs["kind"] == "exhibit"].iloc[0]
    assert ex["exhibit_type"] == "EX-99.1" and ex["text"] == "Record quarter."


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"accepted_at": "2021-07-02T17:00:00"}, r"m\.jsonl:3: field accepted_at: .* no time zone"),
        ({"accepted_at": "yesterday"}, r"m\.jsonl:3: field accepted_at: .*not an ISO 8601"),
        ({"accepted_at": "0001-01-01T00:00:00+01:00"}, r"m\.jsonl:3: field accepted_at: .*range"),
        ({"items": ["2.99"]}, r"m\.jsonl:3: field items: unknown item '2.99'"),
        ({"id": "0000000002-21-000001"}, r"m\.jsonl:3: field id: duplicate accession .* line 1"),
        ({"ticker": None}, r"m\.jsonl:3: fields ticker/cik"),
        ({"returns": {"0_1": "lots"}}, r"m\.jsonl:3: field returns\.0_1"),
        ({"colour": "red"}, r"m\.jsonl:3: unknown field\(s\) colour"),
        ({"returns": {"0_1": "nan"}}, r"m\.jsonl:3: field returns\.0_1: 'nan' is not a finite"),
        ({"returns": {"0_1": True}}, r"m\.jsonl:3: field returns\.0_1: True is not a finite"),
        ({"returns": {"1_0": 0.1}}, r"m\.jsonl:3: field returns: window '1_0'"),
        ({"id": ["x"]}, r"m\.jsonl:3: field id: must be a string"),
        ({"company": {"n": 1}}, r"m\.jsonl:3: field company: must be a string"),
        ({"accepted_at": 1625259600}, r"m\.jsonl:3: field accepted_at: expected an ISO 8601 str"),
        ({"text": "FORM 8-K \ud800"}, r"m\.jsonl:3: field text: invalid Unicode at character 9"),
        ({"exhibits": {"type": "EX-99.1"}}, r"m\.jsonl:3: field exhibits: expected a list"),
        ({"exhibits": [{"type": "EX-99.1"}]}, r"m\.jsonl:3: field exhibits\[0\]: give the"),
        (
            {"exhibits": [{"type": "EX-\ud800", "text": "x"}]},
            r"m\.jsonl:3: field exhibits\[0\]\.type: invalid Unicode",
        ),
        ({"exhibits": [{"type": 99, "text": "x"}]}, r"field exhibits\[0\]\.type: must be a str"),
        # regressions: ValueError "embedded null byte" / OverflowError tracebacks
        ({"text": None, "path": "a\x00b.htm"}, r"m\.jsonl:3: field path: .* NUL character"),
        ({"exhibits": [{"type": "EX-99.1", "path": "x\x00"}]}, r"field exhibits\[0\]: .* NUL"),
        ({"returns": {"0_1": 10**400}}, r"m\.jsonl:3: field returns\.0_1: 1000.* not a finite"),
        # second audit: a non-numeric cik was an int() traceback without the isdigit check
        ({"cik": "12a4"}, r"m\.jsonl:3: field cik: '12a4' is not a number"),
        ({"cik": "-5", "ticker": None}, r"m\.jsonl:3: field cik: '-5' is not a number"),
        ({"cik": "\u00b2"}, r"m\.jsonl:3: field cik: '\u00b2' is not a number"),  # isdigit's
        ({"sector": "Energy"}, r"m\.jsonl:3: field sector: needs cik"),  # found before writing
        ({"text": None, "path": "absent.htm"}, r"m\.jsonl:3: field path: cannot read .*absent"),
    ],
)
def test_manifest_errors_name_line_and_store_nothing(tmp_path, bad, message) -> None:
    # Every record is checked before the first is stored: lines 1-2 are not left in the store
    # without their returns, and a store this ingest created is not left behind empty.
    manifest = _jsonl(tmp_path / "m.jsonl", [_row(1), _row(2), _row(3, **bad), _row(4)])
    with pytest.raises(UserError, match=message):
        files.ingest_files(tmp_path / "s.duckdb", manifest)
    assert not (tmp_path / "s.duckdb").exists()


def test_manifest_error_leaves_an_existing_store_as_it_was(tmp_path) -> None:
    store_path = tmp_path / "s.duckdb"
    files.ingest_files(store_path, _jsonl(tmp_path / "a.jsonl", [_row(1)]))
    bad = _jsonl(tmp_path / "m.jsonl", [_row(2), _row(3, accepted_at="yesterday")])
    with pytest.raises(UserError, match=r"m\.jsonl:2: field accepted_at"):
        files.ingest_files(store_path, bad)
    with Store(store_path, read_only=True) as store:
        accs = [r["accession"] for r in store.query("SELECT accession FROM filings")]
    assert accs == ["0000000002-21-000001"]


def test_manifest_invalid_json_line(tmp_path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(_row(1)) + "\n{not json\n")
    with pytest.raises(UserError, match=r"m\.jsonl:2: invalid JSON"):
        files.ingest_files(tmp_path / "s.duckdb", path)


@pytest.mark.parametrize("name", ["m.jsonl", "m.csv"])
def test_manifest_not_utf8_or_empty_is_a_one_line_error(tmp_path, name) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xe9\n")
    with pytest.raises(UserError, match=rf"{name}: not UTF-8 text \(byte 0\)"):
        files.ingest_files(tmp_path / "s.duckdb", path)
    path.write_text("id,accepted_at,form,text\n" if name.endswith(".csv") else "\n")
    with pytest.raises(UserError, match=rf"{name}: no filings"):
        files.ingest_files(tmp_path / "s.duckdb", path)


def test_manifest_binary_document_is_skipped_even_with_items(tmp_path) -> None:
    (tmp_path / "x.htm").write_bytes(b"PK\x03\x04\x00\x00binary")
    manifest = _jsonl(
        tmp_path / "m.jsonl", [_row(1, text=None, path="x.htm", items=["8.01"]), _row(2)]
    )
    summary = files.ingest_files(tmp_path / "s.duckdb", manifest)
    assert summary["filings"] == 1
    assert summary["skipped"] == {"m.jsonl:1": "binary file, not an 8-K text/HTML document"}


def test_directory_duplicate_accession_is_listed_not_overwritten(tmp_path) -> None:
    d = tmp_path / "filings"
    d.mkdir()
    acc = "0000000001-21-000001"
    doc = HTML_8K.format(item="8.01", title="Other Events.", body="Caf\xe9 news \u2019 here.")
    (d / f"1234_8K_2021_{acc}.htm").write_bytes(doc.encode("cp1252"))  # an old Windows file
    (d / f"ABC_{acc}.htm").write_text(HTML_8K.format(item="2.02", title="Results", body="x"))
    summary = files.ingest_files(tmp_path / "s.duckdb", d)
    assert summary["filings"] == 1
    assert summary["skipped"] == {
        f"ABC_{acc}.htm": f"duplicate accession {acc} (already stored from 1234_8K_2021_{acc}.htm)"
    }
    t = tables(tmp_path / "s.duckdb")
    assert list(t["filings"]["cik"]) == ["1234"]
    assert "Café news \u2019 here." in t["documents"]["text"][0]  # decoded as the parser does


def test_parser_warnings_of_stored_files_are_in_the_summary(tmp_path) -> None:
    d = tmp_path / "filings"
    d.mkdir()
    truncated = HTML_8K.format(item="8.01", title="Other Events.", body="x")[:90]
    (d / "0000000001-21-000001.htm").write_text(truncated)  # cover page only, cut off
    summary = files.ingest_files(tmp_path / "s.duckdb", d)
    assert summary["filings"] == 1
    assert summary["warnings"] == {"0000000001-21-000001.htm": "no item headings found"}


def test_csv_manifest(tmp_path) -> None:
    path = tmp_path / "m.csv"
    pd.DataFrame(
        [
            {
                "id": "0000000003-21-000001",
                "ticker": "XYZ",
                "accepted_at": "2021-03-01T21:05:00Z",
                "form": "8-K",
                "items": "2.02;9.01",
                "text": "FORM 8-K\nItem 2.02 Results of Operations\nRevenue up.",
                "abnormal_ret_0_1": -0.03,
            }
        ]
    ).to_csv(path, index=False)
    summary = files.ingest_files(tmp_path / "s.duckdb", path)
    assert summary["filings"] == 1
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        ev = store.query("SELECT abnormal_ret FROM events WHERE method = 'provided'")
    assert ev == [{"abnormal_ret": -0.03}]
    bad = tmp_path / "bad.csv"
    bad.write_text("accession,when,text\nx,y,z\n")
    with pytest.raises(UserError, match=r"bad\.csv:1: header: missing column\(s\) id, accepted_at"):
        files.ingest_files(tmp_path / "s.duckdb", bad)


def test_csv_manifest_header_any_case_and_trailing_comma(tmp_path) -> None:
    path = tmp_path / "m.csv"
    row = "0000000003-21-000001,XYZ,2021-03-01T21:05:00Z,8-K,FORM 8-K Item 8.01 News."
    path.write_text(f"ID,Ticker,Accepted_At,FORM,Text\n{row}\n")
    assert files.ingest_files(tmp_path / "s.duckdb", path)["filings"] == 1
    path.write_text(f"id,ticker,accepted_at,form,text,\n{row},\n")
    with pytest.raises(UserError, match=r"m\.csv:1: header: an empty column name \(a trailing"):
        files.ingest_files(tmp_path / "s.duckdb", path)


def test_corrected_manifest_returns_replace_the_old_ones(tmp_path) -> None:
    store_path = tmp_path / "s.duckdb"

    def provided() -> dict:
        with Store(store_path, read_only=True) as store:
            rows = store.query(
                "SELECT \"window\", abnormal_ret FROM events WHERE method = 'provided'"
            )
        return {r["window"]: r["abnormal_ret"] for r in rows}

    files.ingest_files(store_path, _jsonl(tmp_path / "a.jsonl", [_row(1, returns={"0_1": 0.5})]))
    assert provided() == {"0_1": 0.5}
    files.ingest_files(store_path, _jsonl(tmp_path / "b.jsonl", [_row(1, returns={"0_3": 0.02})]))
    assert provided() == {"0_3": 0.02}  # the corrected record's windows only
    files.ingest_files(store_path, _jsonl(tmp_path / "c.jsonl", [_row(1)]))
    assert provided() == {"0_3": 0.02}  # a record without returns keeps the known ones


def test_manifest_id_without_dashes_is_the_same_filing(tmp_path) -> None:
    store_path = tmp_path / "s.duckdb"
    files.ingest_files(store_path, _jsonl(tmp_path / "a.jsonl", [_row(1, id="000000000221000001")]))
    files.ingest_files(store_path, _jsonl(tmp_path / "b.jsonl", [_row(1)]))
    with Store(store_path, read_only=True) as store:
        accs = [r["accession"] for r in store.query("SELECT accession FROM filings")]
    assert accs == ["0000000002-21-000001"]
    dup = _jsonl(tmp_path / "d.jsonl", [_row(1), _row(2, id="000000000221000001")])
    with pytest.raises(UserError, match=r"d\.jsonl:2: field id: duplicate accession"):
        files.ingest_files(store_path, dup)


def test_csv_manifest_row_with_extra_cells(tmp_path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "id,ticker,accepted_at,form,text\n"
        "0000000003-21-000001,XYZ,2021-03-01T21:05:00Z,8-K,FORM 8-K Item 8.01 News.\n"
        "0000000003-21-000002,XYZ,2021-03-02T21:05:00Z,8-K,FORM 8-K Item 8.01 News.,oops,more\n"
    )
    with pytest.raises(UserError, match=r"m\.csv:3: 2 more cells than the header"):
        files.ingest_files(tmp_path / "s.duckdb", path)
    assert not (tmp_path / "s.duckdb").exists()  # nothing stored, not even the good row 2


@pytest.mark.parametrize("text", [5, ["<p>a</p>"], {"p": "a"}])
def test_manifest_exhibit_text_must_be_a_string(tmp_path, text) -> None:
    manifest = _jsonl(tmp_path / "m.jsonl", [_row(1, exhibits=[{"type": "EX-99.1", "text": text}])])
    with pytest.raises(UserError, match=r"m\.jsonl:1: field exhibits\[0\]\.text: must be a string"):
        files.ingest_files(tmp_path / "s.duckdb", manifest)


def test_items_with_item_prefix_are_stored_as_codes(tmp_path) -> None:
    assert files.parse_items(["Item 2.02", "item 9.01"], "w") == ["2.02", "9.01"]
    assert files.parse_items("Item 2.02; ITEM 9.01", "w") == ["2.02", "9.01"]
    assert files.parse_items("2.02,9.01", "w") == ["2.02", "9.01"]
    with pytest.raises(UserError, match=r"w: field items: unknown item '2\.99'"):
        files.parse_items(["Item 2.99"], "w")
    manifest = _jsonl(tmp_path / "m.jsonl", [_row(1, items=["Item 2.02", "Item 9.01"])])
    files.ingest_files(tmp_path / "s.duckdb", manifest)
    f = tables(tmp_path / "s.duckdb")["filings"]
    assert list(f.loc[0, "items"]) == ["2.02", "9.01"]


def test_bad_paths(tmp_path) -> None:
    with pytest.raises(UserError, match="not found"):
        files.ingest_files(tmp_path / "s.duckdb", tmp_path / "nope.jsonl")
    (tmp_path / "x.pdf").write_text("x")
    with pytest.raises(UserError, match="expected a .jsonl/.csv manifest"):
        files.ingest_files(tmp_path / "s.duckdb", tmp_path / "x.pdf")


# -- kill and rerun ----------------------------------------------------------------------------


def _cli(store: Path, d: Path, prices: Path, sleep: float) -> subprocess.Popen:
    env = {**os.environ, files.SLEEP_ENV: str(sleep), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "filingcontrast", "ingest", "files", str(d)]
    cmd += ["--prices", str(prices), "--store", str(store)]
    return subprocess.Popen(
        cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def test_killed_ingest_rerun_matches_uninterrupted(tmp_path) -> None:
    d = make_dir(tmp_path, n=12)
    prices = write_prices(tmp_path / "prices.csv", ["TK0", "TK1", "TK2"])
    reference = tmp_path / "ref.duckdb"
    files.ingest_files(reference, d, prices_csv=prices)

    killed = tmp_path / "killed.duckdb"
    for kill_after in (3, 8):  # kill twice, at different points
        proc = _cli(killed, d, prices, sleep=0.2)
        for line in proc.stderr:
            if (
                line.startswith("filingcontrast-test: stored")
                and int(line.split()[-1]) >= kill_after
            ):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        with Store(killed, read_only=True) as store:
            n = store.count("filings")
            n_docs = store.count("documents")
        assert kill_after <= n < 12
        assert n_docs == 2 * n  # each filing's rows are all there or none are
    rerun = subprocess.run(
        [sys.executable, "-m", "filingcontrast", "ingest", "files", str(d)]
        + ["--prices", str(prices), "--store", str(killed)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    got, want = tables(killed), tables(reference)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_dtype=False)


# -- review findings: silent no-return ingests, submissions in manifests, kept values ----------


def _cli_main(capsys, *argv: str) -> tuple[int, str, str]:
    from filingcontrast.cli import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_folder_without_tickers_or_times_says_so_on_stderr(tmp_path, capsys) -> None:
    d = tmp_path / "crawler"
    d.mkdir()
    for i in (1, 2):  # EDGAR-crawler names: a CIK, no ticker; bare .htm: no acceptance time
        acc = f"0000000001-21-{i:06d}"
        (d / f"1234_8K_2021_{acc}.htm").write_text(
            HTML_8K.format(item="8.01", title="Other Events.", body=f"News {i}.")
        )
    acc = "0000000001-21-000003"
    (d / f"1234_8K_2021_{acc}.txt").write_text(sgml_8k(acc, 1234, "20210301080000"))
    rc, out, err = _cli_main(capsys, "ingest", "files", str(d), "--store", str(tmp_path / "s"))
    assert rc == 0 and json.loads(out)["filings"] == 3
    notes = [ln for ln in err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1, err
    assert "returns cannot be computed for 3 of the 3 filings stored" in notes[0]
    assert "3 without a ticker, 2 without an acceptance time" in notes[0]
    assert "manifest" in notes[0] and "docs/corpus.md" in notes[0]
    assert json.loads(out)["note"] in notes[0]
    # Everything given: no note.
    manifest = _jsonl(tmp_path / "m.jsonl", [_row(1)])
    rc, out, err = _cli_main(
        capsys, "ingest", "files", str(manifest), "--store", str(tmp_path / "t")
    )
    assert rc == 0 and "note:" not in err and "note" not in json.loads(out)


def test_a_run_that_stores_nothing_is_a_one_line_error(tmp_path, capsys) -> None:
    d = tmp_path / "unusable"
    d.mkdir()
    (d / "a.htm").write_text("")
    (d / "b.htm").write_text("  \n")
    (d / "c.txt").write_bytes(b"\x00\x01binary")
    (d / "d.htm").write_text("<html><body><p>FORM 10-Q</p><p>Quarterly report</p></body></html>")
    rc, out, err = _cli_main(capsys, "ingest", "files", str(d), "--store", str(tmp_path / "s"))
    assert rc == 1 and out == "" and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {d}: no filing stored, 4 files skipped: 2 × empty document; ")
    assert "1 × binary file" in err and "1 × form 10-Q is not an 8-K" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = _cli_main(capsys, "ingest", "files", str(empty), "--store", str(tmp_path / "s"))
    assert rc == 1 and err == f"error: {empty}: no .htm/.html/.txt files (the folder is empty)\n"
    manifest = _jsonl(tmp_path / "m.jsonl", [_row(1, form="10-K"), _row(2, form="10-Q")])
    with pytest.raises(UserError, match=r"m\.jsonl: no filing stored, 2 records skipped: 1 × form"):
        files.ingest_files(tmp_path / "s.duckdb", manifest)
    # --prices are stored before the filings: the error says so (it was silent about them)
    prices = tmp_path / "p.csv"
    prices.write_text("ticker,date,close\nABC,2021-07-01,10\nABC,2021-07-02,11\n")
    with pytest.raises(UserError, match=r"skipped: .* \(2 price rows were stored\)"):
        files.ingest_files(tmp_path / "s.duckdb", manifest, prices_csv=prices)


def _documents(store: Path) -> list[dict]:
    with Store(store, read_only=True) as s:
        return s.query("SELECT * FROM documents ORDER BY accession, name")


def _submission_manifest(tmp_path, acc: str, sgml: str, **fields) -> Path:
    """A one-record manifest whose document is the full submission `sgml` under subs/."""
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / f"{acc}.txt").write_text(sgml)
    row = _row(1, id=acc, text=None, path=f"subs/{acc}.txt", **fields)
    return _jsonl(tmp_path / "m.jsonl", [row])


def test_manifest_path_to_full_submission_is_split_like_a_folder_file(tmp_path) -> None:
    acc = "0000000005-21-000001"
    sgml = sgml_8k(acc, 55, "20210301080000", exhibit="Record quarter.")
    manifest = _submission_manifest(tmp_path, acc, sgml, accepted_at="2021-03-01T08:00:00-05:00")
    files.ingest_files(tmp_path / "m.duckdb", manifest)
    files.ingest_files(tmp_path / "d.duckdb", tmp_path / "subs")
    from_manifest, from_folder = (
        _documents(tmp_path / "m.duckdb"),
        _documents(tmp_path / "d.duckdb"),
    )
    assert from_manifest == from_folder
    assert [(r["kind"], r["exhibit_type"]) for r in from_manifest] == [
        ("main", None),
        ("exhibit", "EX-99.1"),
    ]
    assert not any("<SEC-HEADER>" in r["text"] or "<DOCUMENT>" in r["text"] for r in from_manifest)
    with Store(tmp_path / "m.duckdb", read_only=True) as s:
        assert s.query("SELECT cik, ticker FROM filings") == [{"cik": "55", "ticker": "ABC"}]


def test_manifest_company_needs_a_cik(tmp_path) -> None:
    manifest = _jsonl(tmp_path / "m.jsonl", [_row(1, company="Acme Widgets Inc")])  # ticker only
    with pytest.raises(
        UserError, match=r"m\.jsonl:1: field company: needs cik \(companies are keyed by CIK\)"
    ):
        files.ingest_files(tmp_path / "s.duckdb", manifest)
    # Regression: the check ran while writing, so line 1 stayed stored (without its returns).
    manifest = _jsonl(tmp_path / "m.jsonl", [_row(1), _row(2, company="Acme Widgets Inc")])
    with pytest.raises(UserError, match=r"m\.jsonl:2: field company: needs cik"):
        files.ingest_files(tmp_path / "s.duckdb", manifest)
    assert not (tmp_path / "s.duckdb").exists()  # nothing stored: the new store is removed
    # With a cik in the record, or in the document's file name (CIK_8K_YEAR_ACCESSION), it is kept.
    acc = "0000000002-21-000002"
    (tmp_path / f"777_8K_2021_{acc}.htm").write_text(_row(2)["text"])
    manifest = _jsonl(
        tmp_path / "m.jsonl",
        [
            _row(1, company="Acme Widgets Inc", cik="0000000123"),
            _row(2, company="Bolt Tools Corp", text=None, path=f"777_8K_2021_{acc}.htm"),
        ],
    )
    files.ingest_files(tmp_path / "s.duckdb", manifest)
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        assert s.query("SELECT cik, ticker, name FROM companies ORDER BY cik") == [
            {"cik": "123", "ticker": "ABC", "name": "Acme Widgets Inc"},
            {"cik": "777", "ticker": "ABC", "name": "Bolt Tools Corp"},
        ]


def test_folder_reingest_keeps_what_a_manifest_gave(tmp_path) -> None:
    d = tmp_path / "docs"
    d.mkdir()
    acc = "0000000002-21-000001"
    (d / f"{acc}.htm").write_text(_row(1)["text"])  # no ticker, cik or time in name or file
    manifest = _jsonl(
        tmp_path / "m.jsonl", [_row(1, text=None, path=f"docs/{acc}.htm", cik="42", returns={})]
    )
    store = tmp_path / "s.duckdb"
    files.ingest_files(store, manifest)
    query = "SELECT cik, ticker, accepted_at, filing_date FROM filings"
    with Store(store, read_only=True) as s:
        before = s.query(query)
    assert before[0]["ticker"] == "ABC" and before[0]["accepted_at"] is not None
    summary = files.ingest_files(store, d)  # the folder source lacks all four
    assert "note" not in summary  # the stored filing has its ticker and time
    with Store(store, read_only=True) as s:
        assert s.query(query) == before
    # A later source that gives a value replaces it: here the SGML header's acceptance time.
    (d / f"{acc}.htm").unlink()
    (d / f"{acc}.txt").write_text(sgml_8k(acc, 42, "20210301080000"))
    files.ingest_files(store, d)
    with Store(store, read_only=True) as s:
        (row,) = s.query(query)
    assert pd.Timestamp(row["accepted_at"]) == pd.Timestamp("2021-03-01T13:00:00Z")
    assert row["ticker"] == "ABC" and row["cik"] == "42"


def test_manifest_items_do_not_bypass_the_form_check(tmp_path) -> None:
    ten_k = "<html><body><p>FORM 10-K</p><p>Item 7. Management's Discussion</p></body></html>"
    manifest = _jsonl(
        tmp_path / "m.jsonl", [_row(1, text=ten_k, items=["2.02"]), _row(2, text=ten_k), _row(3)]
    )
    summary = files.ingest_files(tmp_path / "s.duckdb", manifest)
    assert summary["filings"] == 1
    reason = "form 10-K is not an 8-K (expected 8-K or 8-K/A)"
    assert summary["skipped"] == {"m.jsonl:1": reason, "m.jsonl:2": reason}
    # ...but a text with no form at all (a bare release) whose record names the items is the
    # record's 8-K, as before the form check; without items it is still skipped.
    release = "Revenue rose 10% to $5 billion; EPS $1.10 beat the consensus of $1.02."
    manifest = _jsonl(
        tmp_path / "m2.jsonl", [_row(4, text=release, items=["2.02"]), _row(5, text=release)]
    )
    summary = files.ingest_files(tmp_path / "s.duckdb", manifest)
    assert summary["filings"] == 1 and list(summary["skipped"]) == ["m2.jsonl:2"]
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        (row,) = s.query("SELECT form, items FROM filings WHERE accession = ?", [_row(4)["id"]])
        (doc,) = s.query("SELECT text FROM documents WHERE accession = ?", [_row(4)["id"]])
    assert row == {"form": "8-K", "items": ["2.02"]} and "EPS $1.10" in doc["text"]


def test_filing_doc_from_file_equals_the_stored_filing(tmp_path) -> None:
    from filingcontrast.digest import (
        acceptance_phrase,
        filing_doc_from_file,
        filing_doc_from_store,
    )

    d = tmp_path / "one"
    d.mkdir()
    acc = "0000000009-21-000001"
    f = d / f"XYZ_{acc}.txt"
    f.write_text(sgml_8k(acc, 99, "20210301080000", item="2.02", exhibit="Record quarter."))
    files.ingest_files(tmp_path / "s.duckdb", d)
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        stored = filing_doc_from_store(s, acc)
    doc = filing_doc_from_file(f)
    assert doc == stored
    assert acceptance_phrase(doc.accepted_at) == "Monday 08:00 ET (before the open)"
    assert doc.items == ["2.02"] and doc.company == "CO 99" and doc.ticker == "XYZ"
    assert doc.exhibits == [("EX-99.1", "Record quarter.")] and "Company 99 news" in doc.main_text
    # No accession in the name or header: the file stem stands in (compare needs no store).
    plain = tmp_path / "my filing.htm"
    plain.write_text(HTML_8K.format(item="8.01", title="Other Events.", body="News."))
    assert filing_doc_from_file(plain).accession == "my filing"
    plain.write_text("")
    with pytest.raises(UserError, match=r"my filing\.htm: empty document"):
        filing_doc_from_file(plain)


def test_manifest_sector_reaches_the_company(tmp_path) -> None:
    # A manifest could not give sectors ("unknown field(s) sector"), so pairs.same_sector had
    # nothing to compare on a user's own filings.
    with pytest.raises(UserError, match=r"m\.jsonl:1: field sector: needs cik"):
        files.ingest_files(
            tmp_path / "s.duckdb", _jsonl(tmp_path / "m.jsonl", [_row(1, sector="Energy")])
        )
    rows = [_row(1, cik="123", sector="Energy"), _row(2, cik="123", sector="Utilities")]
    files.ingest_files(tmp_path / "s.duckdb", _jsonl(tmp_path / "m.jsonl", rows))
    with Store(tmp_path / "s.duckdb", read_only=True) as s:  # the first known sector is kept
        assert s.query("SELECT cik, sector FROM companies") == [{"cik": "123", "sector": "Energy"}]


def test_manifest_file_names_give_no_ticker_and_only_crawler_ciks(tmp_path) -> None:
    # The manifest route took the folder route's file-name guesses: "press_<acc>.htm" made the
    # ticker PRESS and "20210127_<acc>.htm" the CIK 20210127 (and its company name).
    rows, names = [], ["press_{}.htm", "20210127_{}.htm", "777_8K_2021_{}.htm"]
    for i, pattern in enumerate(names, start=1):
        acc = _row(i)["id"]
        (tmp_path / pattern.format(acc)).write_text(_row(i)["text"])
        rows.append(_row(i, text=None, path=pattern.format(acc), ticker=None, cik=None))
    rows[0]["cik"] = "42"  # a record needs a ticker or a cik
    rows[1]["ticker"] = "DEF"
    rows[2]["ticker"] = "GHI"
    files.ingest_files(tmp_path / "s.duckdb", _jsonl(tmp_path / "m.jsonl", rows))
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        got = s.query("SELECT cik, ticker FROM filings ORDER BY accession")
    assert got == [
        {"cik": "42", "ticker": None},
        {"cik": None, "ticker": "DEF"},
        {"cik": "777", "ticker": "GHI"},
    ]


def test_manifest_accepted_at_beats_the_sgml_header_time(tmp_path) -> None:
    # The record's accepted_at replaces what the document gave, the SGML header's
    # <ACCEPTANCE-DATETIME> included: 08:00 ET in the header (day 0 = that day), 17:00 ET in
    # the manifest (after the close: day 0 = the next session).
    acc = "0000000006-21-000001"
    manifest = _submission_manifest(tmp_path, acc, sgml_8k(acc, 66, "20210301080000"),
                                    accepted_at="2021-03-01T17:00:00-05:00",
                                    returns={"0_1": 0.01})  # fmt: skip
    prices = write_prices(tmp_path / "prices.csv", ["ABC"])
    files.ingest_files(tmp_path / "s.duckdb", manifest, prices_csv=prices)
    t = tables(tmp_path / "s.duckdb")
    (filing,) = t["filings"].to_dict("records")
    assert pd.Timestamp(filing["accepted_at"]) == pd.Timestamp("2021-03-01T22:00:00Z")
    assert pd.Timestamp(filing["filing_date"]).date() == dt.date(2021, 3, 1)  # header's date
    day0s = {m: set(pd.to_datetime(g["day0"]).dt.date) for m, g in t["events"].groupby("method")}
    assert day0s.pop("provided") == {dt.date(2021, 3, 2)}
    assert day0s and all(days == {dt.date(2021, 3, 2)} for days in day0s.values())


# -- second audit: normalised fields, CIK -> ticker lookup, empty returns, no-filing runs -------


def _events(store: Path, method: str) -> list[dict]:
    with Store(store, read_only=True) as s:
        return s.query(
            'SELECT accession, "window", abnormal_ret, skip_reason FROM events WHERE method = ? '
            'ORDER BY accession, "window"',
            [method],
        )


def test_manifest_fields_are_normalised(tmp_path) -> None:
    """Lower-case tickers and forms, a JSON integer cik, repeated item codes: stored as the
    prices, the form check and the pair builder spell them, so the returns are computed."""
    manifest = _jsonl(
        tmp_path / "m.jsonl",
        [
            _row(1, ticker=" abc ", form="8-k/a", items=["2.02", "9.01", "Item 2.02"]),
            _row(2, ticker=None, cik=1234, items="9.01;2.02;9.01"),
        ],
    )
    prices = write_prices(tmp_path / "prices.csv", ["ABC"])
    summary = files.ingest_files(tmp_path / "s.duckdb", manifest, prices_csv=prices)
    assert summary["filings"] == 2 and summary["skipped"] == {}
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        got = s.query("SELECT cik, ticker, form, items FROM filings ORDER BY accession")
    assert got == [
        {"cik": None, "ticker": "ABC", "form": "8-K/A", "items": ["2.02", "9.01"]},
        {"cik": "1234", "ticker": None, "form": "8-K", "items": ["9.01", "2.02"]},
    ]
    adjusted = {(r["accession"], r["window"]): r for r in _events(tmp_path / "s.duckdb",
                                                                  "market_adjusted")}  # fmt: skip
    first = _row(1)["id"]
    assert all(adjusted[first, w]["skip_reason"] is None for w in ("0_1", "0_3", "0_5"))


def test_ticker_is_looked_up_by_cik_in_companies(tmp_path) -> None:
    """A filing with a CIK but no ticker (a crawler file name, a manifest record with only a
    cik) gets the ticker of the company already stored under that CIK."""
    store = tmp_path / "s.duckdb"
    files.ingest_files(store, _jsonl(tmp_path / "a.jsonl", [_row(1, cik="777", ticker="XYZ")]))
    d = tmp_path / "crawler"
    d.mkdir()
    acc = "0000000002-21-000002"
    (d / f"777_8K_2021_{acc}.htm").write_text(_row(2)["text"])
    (d / "888_8K_2021_0000000002-21-000003.htm").write_text(_row(3)["text"])  # unknown CIK
    files.ingest_files(store, d)
    files.ingest_files(store, _jsonl(tmp_path / "b.jsonl", [_row(4, cik="777", ticker=None)]))
    with Store(store, read_only=True) as s:
        got = s.query("SELECT accession, cik, ticker FROM filings ORDER BY accession")
    assert [(r["cik"], r["ticker"]) for r in got] == [
        ("777", "XYZ"),
        ("777", "XYZ"),  # from the folder: CIK in the name, ticker from companies
        ("888", None),
        ("777", "XYZ"),  # from the manifest: the record's cik
    ]


def test_zero_padded_crawler_cik_is_the_same_company() -> None:
    ids = files.ids_from_filename("0000320193_8K_2021_0000320193-21-000010.htm")
    assert ids == {"accession": "0000320193-21-000010", "cik": "320193", "ticker": None}


def test_return_windows_of_one_day_and_empty_csv_cells(tmp_path) -> None:
    """Windows with START == END are valid ("1_1": the day after day 0); an empty CSV cell is a
    window the record leaves empty (not_provided), not an error."""
    store = tmp_path / "s.duckdb"
    files.ingest_files(
        store, _jsonl(tmp_path / "m.jsonl", [_row(1, returns={"0_0": 0.004, "1_1": -0.002})])
    )
    assert _events(store, "provided") == [
        {"accession": _row(1)["id"], "window": "0_0", "abnormal_ret": 0.004, "skip_reason": None},
        {"accession": _row(1)["id"], "window": "1_1", "abnormal_ret": -0.002, "skip_reason": None},
    ]
    path = tmp_path / "m.csv"
    text = "FORM 8-K Item 8.01 News."
    path.write_text(
        "id,ticker,accepted_at,form,text,abnormal_ret_0_1,abnormal_ret_0_3\n"
        f"0000000003-21-000001,XYZ,2021-03-01T21:05:00Z,8-K,{text},0.01,\n"
        f"0000000003-21-000002,XYZ,2021-03-02T21:05:00Z,8-K,{text},,-0.02\n"
    )
    assert files.ingest_files(tmp_path / "c.duckdb", path)["filings"] == 2
    got = {(r["accession"][-1], r["window"]): r for r in _events(tmp_path / "c.duckdb", "provided")}
    assert got["1", "0_1"]["abnormal_ret"] == 0.01 and got["2", "0_3"]["abnormal_ret"] == -0.02
    for key in (("1", "0_3"), ("2", "0_1")):
        assert got[key]["abnormal_ret"] is None and got[key]["skip_reason"] == "not_provided"


def test_return_window_names_are_normalised_and_ascii(tmp_path) -> None:
    """ "00_01" is stored as 0_1 (it never matched pairs.window before); a window named twice
    that way, or with non-ASCII digits, is a line error naming the field."""
    store = tmp_path / "s.duckdb"
    files.ingest_files(store, _jsonl(tmp_path / "m.jsonl", [_row(1, returns={"00_01": 0.01})]))
    assert [r["window"] for r in _events(store, "provided")] == ["0_1"]
    for returns, needle in (({"0_1": 0.01, "00_01": 0.02}, "given twice (as 0_1)"),
                            ({"\u0660_1": 0.01}, "must look like 0_1")):  # fmt: skip
        with pytest.raises(UserError, match=re.escape(needle)) as err:
            files.ingest_files(tmp_path / "x.duckdb", _jsonl(tmp_path / "x.jsonl",
                                                            [_row(1, returns=returns)]))  # fmt: skip
        assert ":1: field returns" in str(err.value)


def test_prices_of_a_run_that_stores_nothing_reach_the_earlier_filings(tmp_path) -> None:
    """`ingest files M --prices P` that stores no filing still stored P: the filings already in
    the store get their returns from it (the error message says the prices were stored)."""
    store = tmp_path / "s.duckdb"
    files.ingest_files(store, _jsonl(tmp_path / "a.jsonl", [_row(1)]))
    assert {r["skip_reason"] for r in _events(store, "market_adjusted")} == {"no_prices"}
    prices = write_prices(tmp_path / "prices.csv", ["ABC"])
    with pytest.raises(UserError, match=r"no filing stored.*price rows were stored"):
        files.ingest_files(store, _jsonl(tmp_path / "b.jsonl", [_row(2, form="10-K")]), prices)
    got = _events(store, "market_adjusted")
    assert len(got) == 3 and all(r["skip_reason"] is None for r in got)
    assert all(r["abnormal_ret"] is not None for r in got)


def test_upper_case_suffixes_are_8k_files(tmp_path) -> None:
    d = tmp_path / "filings"
    d.mkdir()
    (d / "ABC_0000000001-21-000001.HTM").write_text(_row(1)["text"])
    (d / "ABC_0000000001-21-000002.TXT").write_text(
        sgml_8k("0000000001-21-000002", 5, "20210301080000")
    )
    summary = files.ingest_files(tmp_path / "s.duckdb", d)
    assert summary["filings"] == 2 and summary["skipped"] == {}


def test_manifest_items_silence_the_parsers_item_warning(tmp_path) -> None:
    """A cover page without item headings warns in the summary, unless the record names the
    items (then the parser's doubt about headings does not matter)."""
    truncated = HTML_8K.format(item="8.01", title="Other Events.", body="x")[:90]
    manifest = _jsonl(
        tmp_path / "m.jsonl", [_row(1, text=truncated, items=["8.01"]), _row(2, text=truncated)]
    )
    summary = files.ingest_files(tmp_path / "s.duckdb", manifest)
    assert summary["filings"] == 2
    assert summary["warnings"] == {"m.jsonl:2": "no item headings found"}


def test_manifest_binary_exhibit_is_a_line_error(tmp_path) -> None:
    (tmp_path / "ex.pdf").write_bytes(b"%PDF\x00\x00\x01binary")
    manifest = _jsonl(
        tmp_path / "m.jsonl", [_row(1), _row(2, exhibits=[{"type": "EX-99.1", "path": "ex.pdf"}])]
    )
    with pytest.raises(UserError, match=r"m\.jsonl:2: field exhibits\[0\]\.path: ex\.pdf is a bin"):
        files.ingest_files(tmp_path / "s.duckdb", manifest)
    assert not (tmp_path / "s.duckdb").exists()


def test_csv_manifest_without_form_column_is_a_header_error(tmp_path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,ticker,accepted_at,text\n0000000003-21-000001,XYZ,2021-03-01T21:05:00Z,x\n")
    with pytest.raises(UserError, match=r"m\.csv:1: header: missing column\(s\) form"):
        files.ingest_files(tmp_path / "s.duckdb", path)


def test_cik_lookup_sees_a_company_stored_earlier_in_the_same_manifest(tmp_path) -> None:
    rows = [_row(1, cik="777", ticker="XYZ"), _row(2, cik="777", ticker=None)]
    manifest = _jsonl(tmp_path / "m.jsonl", rows)
    once, twice = tmp_path / "once.duckdb", tmp_path / "twice.duckdb"
    summary = files.ingest_files(once, manifest)
    files.ingest_files(twice, manifest)
    files.ingest_files(twice, manifest)
    query = "SELECT accession, cik, ticker FROM filings ORDER BY accession"
    with Store(once, read_only=True) as a, Store(twice, read_only=True) as b:
        assert a.query(query) == b.query(query)  # one run = the same run repeated
        assert [r["ticker"] for r in a.query(query)] == ["XYZ", "XYZ"]
    assert "note" not in summary


def test_manifest_record_fields_replace_the_documents(tmp_path) -> None:
    """The record's cik and ticker win over the document's (file name, SGML header, the ticker
    stored for the document's CIK); the header's filing date is kept (EDGAR dates a filing
    accepted after 17:30 the next business day), not replaced by the acceptance date."""
    store = tmp_path / "s.duckdb"
    files.ingest_files(store, _jsonl(tmp_path / "a.jsonl", [_row(1, cik="777", ticker="XYZ")]))
    acc = "0000000002-21-000002"
    sgml = sgml_8k(acc, 777, "20210301180000").replace(
        "FILED AS OF DATE:\t\t20210301", "FILED AS OF DATE:\t\t20210302"
    )
    (tmp_path / f"777_8K_2021_{acc}.txt").write_text(sgml)
    row = _row(2, text=None, path=f"777_8K_2021_{acc}.txt", cik="123", ticker="abc")
    row["accepted_at"] = "2021-03-01T18:00:00-05:00"
    files.ingest_files(store, _jsonl(tmp_path / "b.jsonl", [row]))
    with Store(store, read_only=True) as s:
        (got,) = s.query("SELECT * FROM filings WHERE accession = ?", [acc])
    assert (got["cik"], got["ticker"]) == ("123", "ABC")
    assert pd.Timestamp(got["filing_date"]).date() == dt.date(2021, 3, 2)
    assert pd.Timestamp(got["accepted_at"]) == pd.Timestamp("2021-03-01T23:00:00Z")


def test_provided_return_outside_the_calendar_is_kept(tmp_path) -> None:
    manifest = _jsonl(
        tmp_path / "m.jsonl", [_row(1, accepted_at="1990-05-01T12:00:00Z", returns={"0_1": 0.01})]
    )
    files.ingest_files(tmp_path / "s.duckdb", manifest)
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        got = s.query(
            'SELECT method, "window", day0, abnormal_ret, skip_reason FROM events '
            "WHERE \"window\" = '0_1' ORDER BY method"
        )
    assert got == [
        {"method": m, "window": "0_1", "day0": None, "abnormal_ret": None, "skip_reason": r}
        for m, r in (("market_adjusted", "outside_calendar"), ("market_model", "outside_calendar"))
    ] + [{"method": "provided", "window": "0_1", "day0": None, "abnormal_ret": 0.01,
          "skip_reason": None}]  # fmt: skip


def test_company_without_a_ticker_is_still_stored(tmp_path) -> None:
    """A crawler folder gives CIKs but no tickers: the companies (named from the SGML header)
    are stored anyway, so a later manifest's ticker completes them."""
    d = tmp_path / "crawler"
    d.mkdir()
    acc = "0000000001-21-000003"
    (d / f"1234_8K_2021_{acc}.txt").write_text(sgml_8k(acc, 1234, "20210301080000"))
    files.ingest_files(tmp_path / "s.duckdb", d)
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        assert s.query("SELECT cik, ticker, name FROM companies") == [
            {"cik": "1234", "ticker": None, "name": "CO 1234"}
        ]
    files.ingest_files(tmp_path / "s.duckdb", _jsonl(tmp_path / "m.jsonl", [_row(9, cik="1234")]))
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        assert s.query("SELECT cik, ticker, name FROM companies") == [
            {"cik": "1234", "ticker": "ABC", "name": "CO 1234"}
        ]
