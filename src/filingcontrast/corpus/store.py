"""The corpus store: one DuckDB file with the tables every source writes and every stage reads.

Tables (key in brackets), as in DESIGN.md: `companies` [cik], `filings` [accession],
`documents` [accession, name], `prices` [ticker, date], `events` [accession, window, method],
`truth` [accession] (simulated data only), `meta` (schema_version).

Writes are upserts keyed by the table's key, and every public write runs in one transaction, so an
ingest killed at any point and rerun ends with the same rows as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from filingcontrast.errors import UserError, first_line

SCHEMA_VERSION = 1

# Column lists double as the documented schema; the first `key` columns form the primary key.
TABLES: dict[str, tuple[list[str], list[str]]] = {
    "companies": (
        ["cik"],
        [
            "cik VARCHAR",
            "ticker VARCHAR",
            "name VARCHAR",
            "sector VARCHAR",
            "size VARCHAR",
            "source VARCHAR",
        ],
    ),
    "filings": (
        ["accession"],
        [
            "accession VARCHAR",
            "cik VARCHAR",
            "ticker VARCHAR",
            "form VARCHAR",
            "accepted_at TIMESTAMPTZ",
            "filing_date DATE",
            "items VARCHAR[]",
            "source VARCHAR",
            "url VARCHAR",
        ],
    ),
    "documents": (
        ["accession", "name"],
        [
            "accession VARCHAR",
            "name VARCHAR",
            "kind VARCHAR",
            "exhibit_type VARCHAR",
            "text VARCHAR",
            "sha256 VARCHAR",
        ],
    ),
    "prices": (
        ["ticker", "date"],
        ["ticker VARCHAR", "date DATE", "close DOUBLE", "adj_close DOUBLE"],
    ),
    "events": (
        ["accession", "window", "method"],
        [
            "accession VARCHAR",
            "window VARCHAR",
            "method VARCHAR",
            "day0 DATE",
            "ret DOUBLE",
            "index_ret DOUBLE",
            "abnormal_ret DOUBLE",
            "skip_reason VARCHAR",
        ],
    ),
    "truth": (
        ["accession"],
        [
            "accession VARCHAR",
            "expected_abnormal_ret DOUBLE",
            "noise_scale DOUBLE",
            "noise_df DOUBLE",
            "drivers VARCHAR",
        ],
    ),
}

# `filings` columns a re-ingest never erases: a later source without the value (None, or no
# items) keeps the stored one (a folder of bare .htm files after a manifest gave ticker,
# accepted_at and the items its parser cannot find).
KEEP_KNOWN = ("cik", "ticker", "accepted_at", "filing_date", "items")


def _blank(value: Any) -> bool:
    """No value for KEEP_KNOWN's purpose: None, or an empty item list."""
    return value is None or value == []


# Ticker under which the market index series is stored in `prices`.
INDEX_TICKER = "^INDEX"

# migrations[v] upgrades a store at schema version v to v + 1.
MIGRATIONS: dict[int, list[str]] = {}


def _quote(name: str) -> str:
    """A quoted SQL identifier: some column names (`window`) are DuckDB keywords."""
    return '"' + name.replace('"', '""') + '"'


def _column_def(col: str) -> str:
    name, _, type_ = col.partition(" ")
    return f"{_quote(name)} {type_}"


def create_table_sql(table: str, if_not_exists: bool = True) -> str:
    """`CREATE TABLE` for one of TABLES (quoted names, primary key on the table's key)."""
    key, cols = TABLES[table]
    return (
        f"CREATE TABLE {'IF NOT EXISTS ' if if_not_exists else ''}{table} "
        f"({', '.join(_column_def(c) for c in cols)}, "
        f"PRIMARY KEY ({', '.join(_quote(k) for k in key)}))"
    )


def sha256_text(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def document_row(
    accession: str, name: str, kind: str, exhibit_type: str | None, text: str
) -> dict[str, Any]:
    """A `documents` row (kind `main|exhibit`) with the hash of its text: every source uses it."""
    return {
        "accession": accession,
        "name": name,
        "kind": kind,
        "exhibit_type": exhibit_type,
        "text": text,
        "sha256": sha256_text(text),
    }


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


def foreign_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables that are not a filingcontrast store's (someone else's database), sorted."""
    return sorted(table_names(con) - set(TABLES) - {"meta"})


def content_digest(path: str | Path) -> str:
    """sha256 over each table's name, row count and sum of DuckDB's row hashes: equal for two
    stores holding the same rows. DuckDB's file bytes are not (two identical simulations give
    different files), so a digest of the bytes made demos sharing a store redo each other's
    work."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        h = hashlib.sha256()
        for table in sorted(table_names(con)):
            n, total = con.execute(
                f"SELECT count(*), coalesce(sum(hash(x)::HUGEINT), 0) FROM {_quote(table)} x"
            ).fetchone()
            h.update(f"{table}\0{n}\0{total}\0".encode())
        return h.hexdigest()[:32]
    finally:
        con.close()


def remove_if_empty(path: str | Path) -> bool:
    """Delete the store at `path` (and its write-ahead log) if no table has a row: what a
    command that created it and then failed on the user's input leaves. True if removed."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        with Store(path) as store:
            if any(store.count(t) for t in TABLES):
                return False
    except UserError:
        return False  # not ours (or unreadable): never delete it
    path.unlink()
    Path(f"{path}.wal").unlink(missing_ok=True)
    return True


def _is_duckdb(path: Path) -> bool:
    """DuckDB's database files carry the magic bytes "DUCK" at offset 8."""
    with path.open("rb") as fh:
        return fh.read(12)[8:12] == b"DUCK"


class Store:
    """A DuckDB corpus store. Use as a context manager or call `close()`.

    >>> with Store("data/x.duckdb") as store:
    ...     store.upsert("filings", rows)
    """

    def __init__(self, path: str | Path, read_only: bool = False, create: bool = True):
        self.path = Path(path)
        self._tx_depth = 0
        if not self.path.exists():
            if read_only or not create:
                raise UserError(
                    f"{self.path}: store not found (run `filingcontrast simulate` or `ingest` first)"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif self.path.is_file() and self.path.stat().st_size and not _is_duckdb(self.path):
            raise UserError(f"{self.path}: not a DuckDB store (pass the .duckdb file for --store)")
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise UserError(f"{self.path}: cannot open store: {first_line(exc)}") from None
        try:
            if not read_only:
                self._ensure_schema()
            else:
                self._check_version()
        except BaseException:
            self.con.close()  # release the file for the next opener
            raise

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All writes inside commit together or not at all.

        Re-entrant: a transaction (or `upsert`) inside another joins the outer one, so several
        tables' rows (a filing and its documents) can be written as one unit.
        """
        if self._tx_depth:
            self._tx_depth += 1
            try:
                yield self.con
            finally:
                self._tx_depth -= 1
            return
        self.con.execute("BEGIN TRANSACTION")
        self._tx_depth = 1
        try:
            yield self.con
        except BaseException:
            self._tx_depth = 0
            self.con.execute("ROLLBACK")
            raise
        self._tx_depth = 0
        self.con.execute("COMMIT")

    # -- schema ---------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        with self.transaction() as con:
            con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
            self._check_tables(["meta"])
            version = self._stored_version()
            if version == 0:
                self._refuse_foreign_tables(con)
                for table in TABLES:
                    con.execute(create_table_sql(table))
                version = SCHEMA_VERSION
            while version < SCHEMA_VERSION:
                for stmt in MIGRATIONS[version]:
                    con.execute(stmt)
                version += 1
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"{self.path}: store schema version {version} is newer than this "
                    f"filingcontrast ({SCHEMA_VERSION}); upgrade filingcontrast"
                )
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)])
            self._check_tables(list(TABLES))

    def _refuse_foreign_tables(self, con: duckdb.DuckDBPyConnection) -> None:
        """A DuckDB file with other tables is someone else's database: never add ours to it."""
        foreign = foreign_tables(con)
        if foreign:
            raise UserError(
                f"{self.path}: not a filingcontrast store (it has other tables: "
                f"{', '.join(foreign[:5])}); choose another --store"
            )

    def _check_version(self) -> None:
        version = 0
        if self._has_table("meta"):
            self._check_tables(["meta"])
            version = self._stored_version()
        if version == 0:
            raise UserError(f"{self.path}: not a filingcontrast store (no schema version)")
        if version != SCHEMA_VERSION:
            raise UserError(
                f"{self.path}: store schema version {version}, expected {SCHEMA_VERSION}; "
                "open it once without read_only to migrate"
            )
        self._check_tables(list(TABLES))

    def _stored_version(self) -> int:
        """meta's schema_version; 0 when there is none (a new or foreign database)."""
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            return 0
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise UserError(
                f"{self.path}: damaged store: schema_version {row[0]!r} is not a number"
            ) from None

    def _check_tables(self, tables: list[str]) -> None:
        """Each of `tables` exists with at least its documented columns: a store someone
        edited by hand (a dropped table, another program's `meta`) fails here in one line,
        not in the middle of a query."""
        have = table_names(self.con)
        for table in tables:
            if table not in have:
                raise UserError(f"{self.path}: damaged store: table {table} is missing")
            cols = ["key", "value"] if table == "meta" else [c.split()[0] for c in TABLES[table][1]]
            info = self.con.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
            present = {r[1] for r in info}
            missing = [c for c in cols if c not in present]
            if missing:
                raise UserError(
                    f"{self.path}: not a filingcontrast store, or a damaged one: table {table} "
                    f"lacks column(s) {', '.join(missing)}"
                )

    def _has_table(self, name: str) -> bool:
        return name in table_names(self.con)

    @property
    def schema_version(self) -> int:
        return int(
            self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        )

    # -- writes ---------------------------------------------------------------------------
    def upsert(self, table: str, rows: Iterable[dict[str, Any]] | Sequence[dict[str, Any]]) -> int:
        """Insert or replace `rows` (dicts keyed by column name) in one transaction."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table}")
        cols = [c.split()[0] for c in TABLES[table][1]]
        rows = list(rows)
        if not rows:
            return 0
        values = [[row.get(c) for c in cols] for row in rows]
        placeholders = ", ".join("?" for _ in cols)
        with self.transaction() as con:
            con.executemany(
                f"INSERT OR REPLACE INTO {table} ({', '.join(map(_quote, cols))}) "
                f"VALUES ({placeholders})",
                values,
            )
        return len(rows)

    def merge_companies(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add new companies; a known one only gets the ticker, name, sector or size it lacked,
        never a different one (a user's sector from `ingest files` outlives EDGAR's SIC text,
        and a rerun never renames a company). One transaction."""
        if not rows:
            return
        cols = [c.split()[0] for c in TABLES["companies"][1]]
        fill = ", ".join(
            f"{c} = coalesce({c}, excluded.{c})" for c in cols if c not in ("cik", "source")
        )
        with self.transaction() as con:
            con.executemany(
                f"INSERT INTO companies ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
                f"ON CONFLICT (cik) DO UPDATE SET {fill}",
                [[row.get(c) for c in cols] for row in rows],
            )

    def upsert_frame(self, table: str, frame: Any) -> int:
        """Bulk upsert from a pandas DataFrame whose columns are a subset of the table's."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table}")
        if len(frame) == 0:
            return 0
        cols = list(frame.columns)
        with self.transaction() as con:
            con.register("_frame", frame)
            try:
                con.execute(
                    f"INSERT OR REPLACE INTO {table} ({', '.join(map(_quote, cols))}) "
                    f"SELECT {', '.join(map(_quote, cols))} FROM _frame"
                )
            finally:
                con.unregister("_frame")
        return len(frame)

    def write_filing(
        self,
        filing: dict[str, Any],
        documents: Sequence[dict[str, Any]] = (),
        events: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """One filing with its documents (and any provided events) as one transaction.

        The filing's previous documents are replaced, so a re-ingest with fewer documents leaves
        no stale ones, and so are its previous events of each method `events` has (a corrected
        manifest's returns replace the old `provided` ones, windows it dropped included; a
        source with no returns leaves them); a run killed mid-way leaves either the whole filing
        or none of it. A
        re-ingest that lacks one of KEEP_KNOWN (a folder file without a header after a manifest
        gave the acceptance time) keeps the stored value; a value it gives replaces it. Returns
        the filing row as stored.
        """
        with self.transaction() as con:
            filing = self._keep_known(filing)
            con.execute("DELETE FROM documents WHERE accession = ?", [filing["accession"]])
            for method in sorted({e["method"] for e in events}):
                con.execute(
                    "DELETE FROM events WHERE accession = ? AND method = ?",
                    [filing["accession"], method],
                )
            self.upsert("filings", [filing])
            self.upsert("documents", list(documents))
            self.upsert("events", list(events))
        return filing

    def _keep_known(self, filing: dict[str, Any]) -> dict[str, Any]:
        """`filing` with its missing KEEP_KNOWN values taken from the stored row, if any."""
        missing = [c for c in KEEP_KNOWN if _blank(filing.get(c))]
        if not missing:
            return filing
        row = self.con.execute(
            f"SELECT {', '.join(map(_quote, missing))} FROM filings WHERE accession = ?",
            [filing["accession"]],
        ).fetchone()
        if row is None:
            return filing
        known = {c: v for c, v in zip(missing, row, strict=True) if not _blank(v)}
        return {**filing, **known}

    # -- reads ----------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def frame(self, sql: str, params: list[Any] | None = None) -> Any:
        """Query result as a pandas DataFrame."""
        return self.con.execute(sql, params or []).df()

    def count(self, table: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
