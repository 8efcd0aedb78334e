"""Store: upserts, one-transaction filings, migrations, keyword column names."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from filingcontrast.corpus import store as store_mod
from filingcontrast.corpus.store import Store
from filingcontrast.errors import UserError


def test_upsert_is_keyed_and_idempotent(tmp_path) -> None:
    with Store(tmp_path / "s.duckdb") as s:
        row = {"accession": "a", "window": "0_1", "method": "m", "abnormal_ret": 0.1}
        s.upsert("events", [row])
        s.upsert("events", [{**row, "abnormal_ret": 0.2}])
        assert s.query('SELECT "window", abnormal_ret FROM events') == [
            {"window": "0_1", "abnormal_ret": 0.2}
        ]


def test_write_filing_replaces_documents_atomically(tmp_path) -> None:
    filing = {"accession": "a", "form": "8-K", "items": ["2.02"], "source": "files"}
    docs = [
        store_mod.document_row("a", "main.htm", "main", None, "x"),
        store_mod.document_row("a", "ex.htm", "exhibit", "EX-99.1", "y"),
    ]
    with Store(tmp_path / "s.duckdb") as s:
        s.write_filing(filing, docs)
        s.write_filing(filing, docs[:1])  # re-ingest with fewer documents: no stale rows
        assert s.count("documents") == 1
        assert s.query("SELECT sha256 FROM documents")[0]["sha256"] == store_mod.sha256_text("x")
        with pytest.raises(RuntimeError):
            with s.transaction():
                s.write_filing({**filing, "accession": "b"}, [{**docs[0], "accession": "b"}])
                raise RuntimeError("killed mid-filing")
        assert s.count("filings") == 1 and s.count("documents") == 1
        s.upsert("filings", [{**filing, "accession": "c"}])  # usable after a rollback
        assert s.count("filings") == 2


# A fake next schema version's migration: adds a column and fills it.
LANGUAGE_MIGRATION = [
    "ALTER TABLE filings ADD COLUMN language VARCHAR",
    "UPDATE filings SET language = 'en'",
]


def test_migration_path(tmp_path, monkeypatch) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        s.upsert("filings", [{"accession": "a", "form": "8-K"}])
        assert s.schema_version == 1
    # A fake next schema version whose migration adds a column and fills it.
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(
        store_mod,
        "MIGRATIONS",
        {1: LANGUAGE_MIGRATION},
    )
    with pytest.raises(UserError, match="schema version 1, expected 2"):
        Store(path, read_only=True)
    with Store(path) as s:
        assert s.schema_version == 2
        assert s.query("SELECT accession, language FROM filings") == [
            {"accession": "a", "language": "en"}
        ]
    with Store(path, read_only=True) as s:
        assert s.schema_version == 2
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 1)
    with pytest.raises(UserError, match="newer than this filingcontrast"):
        Store(path)


def test_failed_migration_leaves_store_unchanged(tmp_path, monkeypatch) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        s.upsert("filings", [{"accession": "a"}])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(
        store_mod, "MIGRATIONS", {1: ["ALTER TABLE filings ADD COLUMN x INT", "SELECT nope"]}
    )
    with pytest.raises(duckdb.Error):
        Store(path)
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 1)
    with Store(path, read_only=True) as s:
        assert s.schema_version == 1
        cols = [
            r["column_name"]
            for r in s.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'filings'"
            )
        ]
        assert "x" not in cols


def test_foreign_duckdb_file_is_refused_and_left_alone(tmp_path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE trades (x INT)")
    con.close()
    with pytest.raises(UserError, match=r"other\.duckdb: not a filingcontrast store .*trades"):
        Store(path)
    con = duckdb.connect(str(path), read_only=True)
    tables = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    con.close()
    assert tables == [("trades",)]


@pytest.mark.parametrize("read_only", [True, False])
@pytest.mark.parametrize(
    "damage, message",
    [
        (
            "DROP TABLE meta; CREATE TABLE meta (name VARCHAR)",
            "table meta lacks column.s. key, value",
        ),
        ("DROP TABLE filings", "damaged store: table filings is missing"),
        (
            "ALTER TABLE events DROP COLUMN abnormal_ret",
            "table events lacks column.s. abnormal_ret",
        ),
        ("UPDATE meta SET value = 'abc'", "damaged store: schema_version 'abc' is not a number"),
    ],
)
def test_a_damaged_store_is_one_line_not_a_query_error(tmp_path, damage, message, read_only):
    """Regression: a dropped table or another program's `meta` failed later in a query
    (CatalogException / BinderException / ValueError tracebacks)."""
    path = tmp_path / "s.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    for stmt in damage.split("; "):
        con.execute(stmt)
    con.close()
    with pytest.raises(UserError, match=message):
        Store(path, read_only=read_only)


@pytest.mark.parametrize("read_only", [True, False])
def test_a_file_that_is_not_duckdb_is_named_as_such(tmp_path, read_only) -> None:
    """Regression: `pairs --store prices.csv` said "Catalog Error: Cannot launch in-memory
    database in read-only mode!"; a CSV must not be opened (or rewritten) as a store either."""
    csv = tmp_path / "prices.csv"
    csv.write_text("ticker,date,close\nA,2020-01-02,1.0\n")
    with pytest.raises(UserError, match=r"prices\.csv: not a DuckDB store"):
        Store(csv, read_only=read_only)
    assert csv.read_text().startswith("ticker,date")


def test_missing_store_read_only(tmp_path) -> None:
    with pytest.raises(UserError, match="store not found"):
        Store(tmp_path / "none.duckdb", read_only=True)


def test_timestamps_round_trip_utc(tmp_path) -> None:
    when = dt.datetime(2021, 7, 2, 21, 0, tzinfo=dt.UTC)
    with Store(tmp_path / "s.duckdb") as s:
        s.upsert("filings", [{"accession": "a", "accepted_at": when}])
        got = s.query("SELECT accepted_at FROM filings")[0]["accepted_at"]
    assert got == when


def test_rewrite_without_a_value_keeps_the_stored_one(tmp_path) -> None:
    accepted = dt.datetime(2021, 3, 1, 13, tzinfo=dt.UTC)
    known = {"accession": "a", "cik": "1", "ticker": "ABC", "accepted_at": accepted,
             "filing_date": dt.date(2021, 3, 1), "form": "8-K", "items": ["2.02"]}  # fmt: skip
    with Store(tmp_path / "s.duckdb") as s:
        s.write_filing(known)
        kept = ("cik", "ticker", "accepted_at", "filing_date")
        bare = {**known, **dict.fromkeys(kept), "items": ["8.01"]}
        stored = s.write_filing(bare)
        (row,) = s.query("SELECT cik, ticker, accepted_at, filing_date, items FROM filings")
        assert row == {**{c: known[c] for c in kept}, "items": ["8.01"]}
        assert stored["ticker"] == "ABC"
        s.write_filing({**bare, "ticker": "XYZ"})  # a value given replaces the known one
        assert s.query("SELECT ticker, cik FROM filings") == [{"ticker": "XYZ", "cik": "1"}]
        s.write_filing({**bare, "items": []})  # a parser that found no items keeps the known ones
        assert s.query("SELECT items FROM filings") == [{"items": ["8.01"]}]


def test_content_digest_sees_rows_not_file_bytes(tmp_path) -> None:
    """Regression: demos sharing a store compared its file bytes, which differ between two
    identical simulations, so each redid the other's simulate and pairs stages."""
    from filingcontrast.config import load_config
    from filingcontrast.corpus.simulate import simulate_to_store

    def simulated(name: str, seed: int):
        path = tmp_path / name
        cfg = load_config(None, [f'store="{path}"', f"simulate.seed={seed}",
                                 "simulate.filings=40", "simulate.companies=4"])  # fmt: skip
        simulate_to_store(cfg)
        return path

    a, b, c = simulated("a.duckdb", 0), simulated("b.duckdb", 0), simulated("c.duckdb", 1)
    assert a.read_bytes() != b.read_bytes()
    assert store_mod.content_digest(a) == store_mod.content_digest(b)
    assert store_mod.content_digest(a) != store_mod.content_digest(c)
    with Store(b) as st:
        st.upsert("filings", [{"accession": "0000000001-21-000001", "source": "simulated"}])
    assert store_mod.content_digest(a) != store_mod.content_digest(b)


# -- transactions, versions, removal (mutation audit) ------------------------------------------


def test_every_failed_transaction_rolls_back_not_only_the_first(tmp_path) -> None:
    with Store(tmp_path / "s.duckdb") as s:
        for acc in ("b", "c"):
            with pytest.raises(RuntimeError):
                with s.transaction():
                    s.write_filing({"accession": acc, "form": "8-K"},
                                   [store_mod.document_row(acc, "m.htm", "main", None, "x")])  # fmt: skip
                    raise RuntimeError("killed mid-filing")
            assert s.count("filings") == 0 and s.count("documents") == 0
        s.write_filing({"accession": "d", "form": "8-K"})
        assert s.count("filings") == 1


def test_failed_write_filing_keeps_the_previous_version_whole(tmp_path) -> None:
    path = tmp_path / "s.duckdb"
    old = [store_mod.document_row("a", "main.htm", "main", None, "old")]
    with Store(path) as s:
        s.write_filing({"accession": "a", "form": "8-K", "ticker": "ABC"}, old)
        bad_doc = {**store_mod.document_row("a", "new.htm", "main", None, "new"), "name": None}
        with pytest.raises(duckdb.Error):  # a NULL key: the insert fails after the delete
            s.write_filing({"accession": "a", "form": "8-K/A", "ticker": "ABC"}, [bad_doc])
    with Store(path, read_only=True) as s:
        assert s.query("SELECT form FROM filings") == [{"form": "8-K"}]
        assert s.query("SELECT name, text FROM documents") == [{"name": "main.htm", "text": "old"}]


def test_provided_returns_are_replaced_per_method(tmp_path) -> None:
    def ev(window, method, value):
        return {"accession": "a", "window": window, "method": method, "abnormal_ret": value}

    filing = {"accession": "a", "form": "8-K"}
    with Store(tmp_path / "s.duckdb") as s:
        s.write_filing(filing, events=[ev("0_1", "provided", 0.1), ev("0_3", "provided", 0.3)])
        s.upsert("events", [ev("0_1", "market_adjusted", 0.5)])
        # A corrected manifest lists only 0_1: the old 0_3 must not linger.
        s.write_filing(filing, events=[ev("0_1", "provided", 0.2)])
        got = s.query('SELECT "window", method, abnormal_ret FROM events ORDER BY 2, 1')
        assert got == [
            {"window": "0_1", "method": "market_adjusted", "abnormal_ret": 0.5},
            {"window": "0_1", "method": "provided", "abnormal_ret": 0.2},
        ]
        s.write_filing(filing)  # a source without returns keeps them
        assert s.count("events") == 2


def test_read_only_open_of_a_newer_store_is_refused(tmp_path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(UserError, match="schema version 2, expected 1"):
        Store(path, read_only=True)


def test_migrations_run_in_sequence_over_several_versions(tmp_path, monkeypatch) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        s.upsert("filings", [{"accession": "a"}])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(
        store_mod,
        "MIGRATIONS",
        {
            1: LANGUAGE_MIGRATION,
            2: ["ALTER TABLE filings ADD COLUMN pages INT", "UPDATE filings SET pages = 3"],
        },
    )
    with Store(path) as s:
        assert s.schema_version == 3
        assert s.query("SELECT language, pages FROM filings") == [{"language": "en", "pages": 3}]


def test_a_new_store_starts_at_the_current_version_without_migrating(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(store_mod, "MIGRATIONS", {1: ["SELECT nope"]})  # only for old stores
    with Store(tmp_path / "s.duckdb") as s:
        assert s.schema_version == 2


def test_create_false_never_creates_a_store(tmp_path) -> None:
    path = tmp_path / "sub" / "none.duckdb"
    with pytest.raises(UserError, match="store not found"):
        Store(path, create=False)
    assert not path.exists() and not path.parent.exists()


def test_remove_if_empty_only_removes_an_empty_store_of_ours(tmp_path) -> None:
    empty = tmp_path / "empty.duckdb"
    Store(empty).close()
    assert store_mod.remove_if_empty(empty) is True
    assert not empty.exists() and not (tmp_path / "empty.duckdb.wal").exists()
    # An EDGAR store has filings but no `truth` rows: it is not empty.
    used = tmp_path / "used.duckdb"
    with Store(used) as s:
        s.upsert("filings", [{"accession": "a"}])
    assert store_mod.remove_if_empty(used) is False
    with Store(used, read_only=True) as s:
        assert s.count("filings") == 1
    foreign = tmp_path / "other.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE trades (x INT)")
    con.close()
    assert store_mod.remove_if_empty(foreign) is False and foreign.exists()
    csv = tmp_path / "prices.csv"
    csv.write_text("ticker,date,close\n")
    assert store_mod.remove_if_empty(csv) is False and csv.exists()
