"""Digests: document order, the exact budget check and its trim, which exhibits are read, and the
acceptance-time phrase against the event study's day 0 (docs/pairs.md, "Digest" and "Budget")."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from filingcontrast.corpus.events import day0
from filingcontrast.digest import (
    FilingDoc,
    _units,
    acceptance_phrase,
    digests_with_counts,
    filing_digest,
)

NY = ZoneInfo("America/New_York")

# One 8.01 section, one sentence per paragraph. Scores (digest._score) are not in document order:
# the EPS sentence is by far the best, the two filler sentences are the worst.
OPENING = "The Company held its annual planning meeting on Tuesday."
EPS = "Quarterly EPS of $1.50 beat the consensus estimate of $1.20."
TRAINING = "Employees attended the yearly safety training program."
BOARD = "The board reviewed routine governance matters."
REVENUE = "Revenue grew 5% to $100 million."
SENTENCES = [OPENING, EPS, TRAINING, BOARD, REVENUE]
RELEASE = "The Company announces record quarterly results."


def make_doc(exhibits: list[tuple[str, str]] | None = None) -> FilingDoc:
    text = "FORM 8-K\n\nItem 8.01 Other Events.\n\n" + "\n\n".join(SENTENCES) + "\n"
    return FilingDoc(
        accession="x",
        items=["8.01"],
        accepted_at=dt.datetime(2021, 5, 4, 13, 0, tzinfo=dt.UTC),  # Tuesday 09:00 ET
        company="Acme Robotics, Inc.",
        ticker="ACMR",
        main_text=text,
        exhibits=[("EX-99.1", RELEASE)] if exhibits is None else exhibits,
    )


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_fixture_scores_are_not_in_document_order() -> None:
    """The premise of the order tests below: greedy selection visits sentences out of order."""
    scores = {u.text: u.score for u in _units(make_doc(exhibits=[]), anonymize=True)}
    assert [scores[s] for s in SENTENCES] != sorted((scores[s] for s in SENTENCES), reverse=True)
    assert max(SENTENCES, key=scores.get) == EPS
    assert min(SENTENCES, key=scores.get) == TRAINING


def test_digest_keeps_document_order(tokenizer) -> None:
    """Sentences are chosen by score but printed in their original order, the press release
    (with its label) after the item section."""
    doc = make_doc()
    full = filing_digest(doc, 400, tokenizer)
    body = full.split("\n")[3:]  # after Form / Items / Accepted
    assert body == [*SENTENCES, "EX-99.1:", RELEASE]
    # A budget that holds only some of them: still the document's order.
    header = "\n".join(full.split("\n")[:3])
    budget = n_tokens(tokenizer, "\n".join([header, EPS, REVENUE, OPENING])) + 3
    part = filing_digest(doc, budget, tokenizer)
    kept = [s for s in SENTENCES if s in part]
    assert EPS in kept and len(kept) < len(SENTENCES)
    assert [part.index(s) for s in kept] == sorted(part.index(s) for s in kept)


class LineBreaksCostTwo:
    """A tokenizer whose line break is two tokens and every word one: each newline-joined unit
    costs one token more than the per-unit estimate (+1 per join) assumes. Real BPE tokenizers
    undercount joins now and then too (SmolLM2: " XXXXXXXX" is 3 tokens more than
    "XXXXXXXX"); the exact check near the budget exists for them."""

    @staticmethod
    def _ids(text: str) -> list[int]:
        return [1] * len(text.split()) + [2, 2] * text.count("\n")

    def __call__(self, texts, add_special_tokens: bool = False) -> dict:
        if isinstance(texts, str):
            return {"input_ids": self._ids(texts)}
        return {"input_ids": [self._ids(t) for t in texts]}

    def decode(self, ids: list[int]) -> str:  # only for headers alone over the budget
        raise AssertionError("no budget in these tests is below the header")


def stub_count(text: str) -> int:
    return len(LineBreaksCostTwo._ids(text))


def test_digest_counts_are_exact_and_never_over_the_budget() -> None:
    """The per-unit estimate the selection sums undercounts here (line breaks cost 2); every
    digest is counted exactly, so none exceeds the budget in real tokens (regression: only
    digests within 16 estimated tokens of the budget were checked, and an undercount larger
    than that overran it)."""
    tok = LineBreaksCostTwo()
    doc = make_doc(exhibits=[])
    (full,), (count_full,) = digests_with_counts([doc], 1000, tok)
    assert all(s in full for s in SENTENCES)
    units = full.split("\n")
    estimate = sum(stub_count(u) + 1 for u in units)  # what the selection sums
    n_full = stub_count(full)
    assert estimate < n_full and count_full == n_full  # the undercount; the count is exact
    header = stub_count("\n".join(units[:3]))
    for budget in range(header, n_full + 3):
        (digest,), (count,) = digests_with_counts([doc], budget, tok)
        assert digest.startswith("Form: 8-K\nItems: 8.01 other events\nAccepted: ")
        assert count == stub_count(digest) <= budget, (budget, digest)


def test_trimming_an_overrun_drops_the_lowest_scored_sentence() -> None:
    """Budget = the full digest's estimate: every sentence is selected, the exact count is over,
    and the trim drops the worst sentence (the training filler), never the EPS sentence."""
    tok = LineBreaksCostTwo()
    doc = make_doc(exhibits=[])
    full = filing_digest(doc, 1000, tok)
    estimate = sum(stub_count(u) + 1 for u in full.split("\n"))
    assert stub_count(full) > estimate
    trimmed = filing_digest(doc, estimate, tok)
    assert stub_count(trimmed) <= estimate
    assert TRAINING not in trimmed  # the lowest-scored sentence goes first ...
    assert [s for s in SENTENCES if s in trimmed] == [OPENING, EPS, BOARD, REVENUE]  # ... alone
    # Tighter budgets trim more, always from the bottom of the scores: EPS stays while it fits.
    header = stub_count("\n".join(full.split("\n")[:3]))
    for budget in range(header + stub_count("\n" + EPS), estimate + 1):
        assert EPS in filing_digest(doc, budget, tok), budget


def test_only_press_release_exhibits_enter_the_digest(tokenizer) -> None:
    """EX-99.x is read; contracts (EX-10) and bylaws (EX-3) are not, even with budget to spare."""
    contract = "The credit facility provides $500 million of revolving loans maturing in 2026."
    bylaws = "The amended bylaws permit shareholders holding 25% of shares to call a meeting."
    doc = make_doc(
        exhibits=[("EX-10.1", contract), ("EX-3.1", bylaws), ("EX-99.1", RELEASE)],
    )
    digest = filing_digest(doc, 600, tokenizer)
    assert "EX-99.1:\n" + RELEASE in digest
    assert "EX-10" not in digest and "EX-3" not in digest
    assert "credit facility" not in digest and "bylaws" not in digest


@pytest.mark.parametrize(
    "hour, minute, when",
    [
        (9, 29, "before the open"),
        (9, 30, "during market hours"),
        (15, 59, "during market hours"),
        (16, 0, "after the close"),  # 16:00 sharp: day 0 is the next session
        (16, 1, "after the close"),
    ],
)
def test_acceptance_phrase_at_the_open_and_close(hour: int, minute: int, when: str) -> None:
    at = dt.datetime(2021, 7, 2, hour, minute, tzinfo=NY)  # a Friday session
    assert acceptance_phrase(at) == f"Friday {hour:02d}:{minute:02d} ET ({when})"
    # The phrase agrees with the event study: before the close, day 0 is that same session.
    same_session = day0(at) == at.date()
    assert same_session == (when != "after the close")


def test_acceptance_phrase_reads_naive_times_as_utc() -> None:
    """The store keeps accepted_at in UTC: a naive 20:00 is 16:00 EDT, after the close."""
    assert acceptance_phrase(dt.datetime(2021, 7, 2, 20, 0)) == "Friday 16:00 ET (after the close)"
    assert acceptance_phrase(dt.datetime(2021, 7, 2, 13, 29)) == (
        "Friday 09:29 ET (before the open)"
    )
    assert acceptance_phrase(None) == "unknown"
