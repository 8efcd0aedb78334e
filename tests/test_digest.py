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


# ---------------------------------------------------------------------------------------------
# Scoring weights, what is never read, the labels, and the budget arithmetic (docs/pairs.md).


class WordTokenizer:
    """One token per whitespace-separated word; joins cost nothing, so the selection's sum
    (+1 per unit) is an overcount and never needs a trim."""

    def __call__(self, texts, add_special_tokens: bool = False) -> dict:
        if isinstance(texts, str):
            return {"input_ids": [1] * len(texts.split())}
        return {"input_ids": [[1] * len(t.split()) for t in texts]}

    def decode(self, ids: list[int]) -> str:
        raise AssertionError("no budget here is below the header")


def test_score_weights_follow_the_documented_rules() -> None:
    from filingcontrast.digest import _score

    plain = "The board met on Tuesday."  # no number, keyword or fact
    later = _score(plain, 9)
    assert _score(plain, 0) - later == pytest.approx(3.0)  # first sentence of a section
    assert _score(plain, 1) - later == pytest.approx(2.0)  # second
    assert _score(plain, 2) - later == pytest.approx(0.5)
    assert later == pytest.approx(-len(plain) / 2000)
    # event words: +2 each, at most +4 (three of them here, no number, no fact)
    words = "Revenue growth drew analyst interest."
    assert _score(words, 9) == pytest.approx(4.0 - len(words) / 2000)
    # a stated fact: the dividend is an event (+4) and a keyword (+2)
    fact = "The board declared a quarterly dividend."
    assert _score(fact, 9) == pytest.approx(6.0 - len(fact) / 2000)
    # a number: +2
    num = "Shipments reached 1,250 units."
    assert _score(num, 9) == pytest.approx(2.0 - len(num) / 2000)
    # equal features: the shorter sentence scores higher
    assert _score("The board met.", 9) > _score("The board met in the large hall downtown.", 9)


def test_press_release_sentences_score_one_more_than_the_item_text() -> None:
    same = "Shipments reached 1,250 units in the quarter."
    doc = FilingDoc(
        accession="x",
        items=["8.01"],
        main_text=f"FORM 8-K\n\nItem 8.01 Other Events.\n\n{OPENING}\n\n{same}\n",
        exhibits=[("EX-99.1", f"{RELEASE}\n\n{same}")],
    )
    scores = [u.score for u in _units(doc, anonymize=False) if u.text == same]
    assert len(scores) == 2  # item section first, then the release (same rank 1 in both)
    assert scores[1] - scores[0] == pytest.approx(1.0)


def test_boilerplate_and_low_value_sentences_are_never_read(tokenizer) -> None:
    release = (
        "Acme reported record revenue of $12.5 million for the quarter. "
        "This release contains forward-looking statements about future revenue growth. "
        "Non-GAAP measures are explained in the attached reconciliation tables. "
        "Non-GAAP results were $1.20 per share."
    )
    doc = make_doc(exhibits=[("EX-99.1", release)])
    digest = filing_digest(doc, 1000, tokenizer, anonymize=False)
    assert "record revenue of $12.5 million" in digest
    assert "Non-GAAP results were $1.20 per share." in digest  # low-value words + amount stay
    assert "forward-looking" not in digest
    assert "reconciliation tables" not in digest


def test_item_labels_only_with_several_informative_items(tokenizer) -> None:
    one = filing_digest(make_doc(exhibits=[]), 1000, tokenizer)
    assert "Item 8.01:" not in one  # the Items: line already names the only item
    two = FilingDoc(
        accession="y",
        items=["2.02", "8.01", "9.01"],
        main_text=(
            "FORM 8-K\n\nItem 2.02 Results of Operations and Financial Condition.\n\n"
            f"{EPS}\n\nItem 8.01 Other Events.\n\n{BOARD}\n\n"
            "Item 9.01 Financial Statements and Exhibits.\n\n99.1 Press release\n"
        ),
    )
    digest = filing_digest(two, 1000, tokenizer)
    assert f"Item 2.02:\n{EPS}" in digest and f"Item 8.01:\n{BOARD}" in digest
    assert "Item 9.01:" not in digest and "Press release" not in digest


def test_exhibit_labels_without_a_sentence_are_dropped() -> None:
    """Budget for the mandatory lines and the EPS sentence only: neither release's label is
    left dangling (the labels of both exhibits go, not only the last one)."""
    tok = WordTokenizer()
    ex1, ex2 = "Training schedules were posted.", "Parking rules were posted."
    doc = make_doc(exhibits=[("EX-99.1", ex1), ("EX-99.2", ex2)])
    full = filing_digest(doc, 1000, tok)
    assert f"EX-99.1:\n{ex1}" in full and f"EX-99.2:\n{ex2}" in full
    units = _units(doc, anonymize=True)
    budget = sum(len(u.text.split()) + 1 for u in units if u.mandatory or u.text == EPS)
    digest = filing_digest(doc, budget, tok)
    assert EPS in digest and ex1 not in digest and ex2 not in digest
    assert "EX-99" not in digest, digest


def test_selection_budget_is_inclusive_and_counts_every_join() -> None:
    """Each unit costs its tokens + 1 (its join), mandatory header lines included; a digest
    whose sum equals the budget exactly is kept whole, one token less drops a sentence."""
    tok = WordTokenizer()
    doc = make_doc(exhibits=[])
    full = filing_digest(doc, 1000, tok)
    estimate = sum(len(u.split()) + 1 for u in full.split("\n"))
    assert all(s in filing_digest(doc, estimate, tok) for s in SENTENCES)
    tighter = filing_digest(doc, estimate - 1, tok)
    assert sum(s in tighter for s in SENTENCES) == len(SENTENCES) - 1
    assert TRAINING not in tighter  # the lowest-scored one


def test_key_facts_line_is_anonymized(tokenizer) -> None:
    doc = make_doc(exhibits=[])
    digest = filing_digest(doc, 400, tokenizer, facts=["Acme Robotics raised guidance"])
    assert "Key facts: the Company raised guidance." in digest or (
        "Key facts: The Company raised guidance." in digest
    ), digest
    assert "Acme" not in digest


def test_trimming_never_leaves_a_bare_exhibit_label() -> None:
    """The release's filler sentence is the lowest-scored unit: when the exact count is over,
    the trim drops it, and its label (now heading nothing) must go with it."""
    tok = LineBreaksCostTwo()
    main = [
        "Revenue grew 5% to $100 million.",
        "Quarterly EPS of $1.50 beat the consensus estimate of $1.20.",
        "Net income rose 8% to $20 million.",
    ]
    doc = FilingDoc(
        accession="x",
        items=["8.01"],
        main_text="FORM 8-K\n\nItem 8.01 Other Events.\n\n" + "\n\n".join(main) + "\n",
        exhibits=[("EX-99.1", "Training schedules were posted.")],
    )
    full = filing_digest(doc, 1000, tok)
    estimate = sum(stub_count(u) + 1 for u in full.split("\n"))
    assert stub_count(full) > estimate  # all selected, exact count over: the trim runs
    trimmed = filing_digest(doc, estimate, tok)
    assert all(s in trimmed for s in main)
    assert "Training schedules" not in trimmed
    assert not trimmed.rstrip().endswith("EX-99.1:"), trimmed


def test_a_header_over_the_budget_is_cut_to_the_budget(tokenizer) -> None:
    """Seven items make the header alone longer than 16 tokens: it is cut by tokens, and the
    digest (and its reported count) stays within the budget."""
    doc = FilingDoc(
        accession="x",
        items=["1.01", "2.03", "3.02", "5.02", "7.01", "8.01", "9.01"],
        accepted_at=dt.datetime(2021, 5, 4, 13, 0, tzinfo=dt.UTC),
        main_text="FORM 8-K\n\nItem 8.01 Other Events.\n\nThe board met.\n",
    )
    for budget in (16, 20, 30):
        (digest,), (count,) = digests_with_counts([doc], budget, tokenizer)
        assert digest.startswith("Form: 8-K\nItems: 1.01 material agreement")
        assert count == n_tokens(tokenizer, digest) <= budget, (budget, digest)
        assert count >= budget - 2  # cut at the budget, not far below it


def test_item_labels_go_first_when_the_mandatory_lines_are_over(tokenizer) -> None:
    """Header + two item labels over the budget: the labels are dropped whole (the header stays
    intact), never a label cut by tokens into "Item 2"."""
    doc = FilingDoc(
        accession="y",
        items=["2.02", "8.01"],
        accepted_at=dt.datetime(2021, 5, 4, 13, 0, tzinfo=dt.UTC),
        main_text=(
            "FORM 8-K\n\nItem 2.02 Results of Operations and Financial Condition.\n\n"
            f"{EPS}\n\nItem 8.01 Other Events.\n\n{BOARD}\n"
        ),
    )
    full = filing_digest(doc, 1000, tokenizer)
    assert "Item 2.02:" in full and "Item 8.01:" in full
    header = "\n".join(full.split("\n")[:3])
    for extra in (0, 2, 3):
        digest = filing_digest(doc, n_tokens(tokenizer, header) + extra, tokenizer)
        assert digest == header, (extra, digest)
