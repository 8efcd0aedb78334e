"""Exhibits pasted into the main document after the signature block (corpus/parse.py): split off
as exhibits with text, while exhibit list lines stay in the signature / exhibit list."""

from __future__ import annotations

from pathlib import Path

import pytest

from filingcontrast.corpus.parse import Parsed8K, parse_8k, parse_8k_file
from filingcontrast.errors import UserError

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "parse"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "edgar-8k"

HEAD = (
    "FORM 8-K\n\nAcme Corp\n(Exact name of registrant as specified in its charter)\n\n"
    "Item 8.01 Other Events\n\nThe board declared a dividend of $0.10 per share.\n\n"
    "Item 9.01 Financial Statements and Exhibits\n\n(d) Exhibits\n\n"
    "99.1 Press release dated May 1, 2008.\n\n"
)
SIGNATURE = (
    "SIGNATURES\n\nPursuant to the requirements of the Securities Exchange Act of 1934, the "
    "registrant has duly caused this report to be signed on its behalf by the undersigned, "
    "hereunto duly authorized.\n\nACME CORP\n\nDate: May 1, 2008 By: /s/ Jane Roe\nJane Roe\n"
    "Chief Executive Officer\n"
)
RELEASE = (
    "Acme Corp Declares Quarterly Dividend\n\n"
    "SPRINGFIELD, May 1, 2008 -- Acme Corp (NASDAQ: ACME) today announced that its board of "
    "directors declared a quarterly cash dividend of $0.10 per share, payable on June 2, 2008 "
    "to shareholders of record on May 15, 2008.\n\n"
    "The dividend is the twelfth consecutive quarterly increase. Acme Corp operates 42 branch "
    "offices and reported total assets of $1.3 billion at March 31, 2008.\n\n"
    "Contact: Jane Roe, 555.010.1000\n"
)


def _signature(p: Parsed8K) -> str:
    (sig,) = [s for s in p.boilerplate if s.kind == "signature"]
    return p.text[sig.start : sig.end]


def test_pasted_press_release_fixture_becomes_exhibit() -> None:
    p = parse_8k_file(ASSETS / "pasted_exhibit.txt")
    assert p.items == ["2.02", "9.01"]
    assert [e.type for e in p.exhibits] == ["EX-99.1"]
    ex = p.exhibits[0]
    assert ex.description == "Press Release of Cedar Harbor Bancorp dated April 24, 2008."
    assert ex.text.startswith("CONTACTS:")
    assert "Earns $1.42 per Diluted Share" in ex.text
    assert "Diluted earnings per share" in ex.text
    # the signature span stops where the exhibit starts; the release is no boilerplate
    sig = _signature(p)
    assert sig.startswith("SIGNATURES") and sig.rstrip().endswith("Chief Executive Officer")
    assert "Exhibit 99.1" not in sig and "Earns" not in sig
    # laid out as SGML exhibits are: main text, then "[EX-99.1] description" and the text
    assert p.text.endswith(ex.text)
    assert "\n\n[EX-99.1] Press Release of Cedar Harbor Bancorp" in p.text
    assert "Earns" not in p.sections["2.02"] + p.sections["9.01"]
    kinds = {s.kind for s in p.boilerplate}
    assert kinds == {"cover", "signature", "forward_looking"}
    (fls,) = [s for s in p.boilerplate if s.kind == "forward_looking"]
    assert p.text.index("[EX-99.1]") < fls.start


def test_pasted_exhibit_inline_heading_styles() -> None:
    for heading in ("EXHIBIT 99.1", "Exhibit 99.1", "EX-99.1", "Exhibit No. 99.1", "Exhibit 99"):
        p = parse_8k(HEAD + SIGNATURE + f"\n{heading}\n\n" + RELEASE, "inline.txt")
        typ = "EX-99" if heading == "Exhibit 99" else "EX-99.1"
        with_text = [e for e in p.exhibits if e.text]
        assert [e.type for e in with_text] == [typ], heading
        assert with_text[0].text.startswith("Acme Corp Declares Quarterly Dividend")
        assert "twelfth consecutive" not in _signature(p)
        assert p.sections["8.01"].endswith("$0.10 per share.")


def test_two_pasted_exhibits_are_split_at_each_heading() -> None:
    agreement = "EMPLOYMENT AGREEMENT\n\n" + "The Executive shall serve as officer.\n" * 15
    p = parse_8k(
        HEAD + SIGNATURE + "\nExhibit 10.1\n\n" + agreement + "\nExhibit 99.1\n\n" + RELEASE,
        "inline.txt",
    )
    assert [(e.type, bool(e.text)) for e in p.exhibits] == [("EX-10.1", True), ("EX-99.1", True)]
    assert p.exhibits[0].text.startswith("EMPLOYMENT AGREEMENT")
    assert "Dividend" not in p.exhibits[0].text
    assert p.exhibits[1].description == "Press release dated May 1, 2008."
    assert p.exhibits[0].description == "EMPLOYMENT AGREEMENT"  # not listed: its first line


def test_exhibit_list_lines_after_signature_are_not_exhibits() -> None:
    # an exhibit index after the signature, as a "Exhibit 99.1 | ..." row and as the number on
    # its own line followed by the description (cover sheet of an exhibit filed separately)
    for tail in (
        "\nEXHIBIT INDEX\n\nExhibit 99.1 | Press release dated May 1, 2008.\n",
        "\nExhibit 99.1 Press release dated May 1, 2008.\n",
        "\nExhibit 99.1\nPress release dated May 1, 2008\n",
        "\nEXHIBIT INDEX\n\nExhibit 99.1 | Press release dated May 1, 2008.\n\nExhibit 99.1\n"
        "Press Release dated May 1, 2008\n",
        "\nExhibit 99.1\n",
    ):
        p = parse_8k(HEAD + SIGNATURE + tail, "inline.txt")
        assert [(e.type, e.text) for e in p.exhibits] == [("EX-99.1", "")], tail
        assert "[EX-99.1]" not in p.text
        assert p.text.rstrip().endswith(tail.strip().rsplit("\n", 1)[-1])


def test_exhibit_heading_before_signature_is_not_split() -> None:
    body = HEAD.replace("99.1 Press release dated May 1, 2008.\n\n", "Exhibit 99.1\n\n" + RELEASE)
    p = parse_8k(body + "\n" + SIGNATURE, "inline.txt")
    assert [(e.type, e.text) for e in p.exhibits] == [("EX-99.1", "")]
    assert "twelfth consecutive" in p.sections["9.01"]


def test_exhibit_index_after_pasted_exhibit_stays_in_main_text() -> None:
    index = "\nEXHIBIT INDEX\n\n99.1 | Press release dated May 1, 2008.\n99.2 | Investor slides.\n"
    p = parse_8k(HEAD + SIGNATURE + "\nExhibit 99.1\n\n" + RELEASE + index, "inline.txt")
    assert [(e.type, bool(e.text)) for e in p.exhibits] == [("EX-99.1", True), ("EX-99.2", False)]
    assert "EXHIBIT INDEX" not in p.exhibits[0].text
    assert p.text.index("EXHIBIT INDEX") < p.text.index("[EX-99.1]")
    assert _signature(p).rstrip().endswith("Chief Executive Officer")


def test_real_filing_with_release_after_signature() -> None:
    path = SHARED / "filings" / "1002682_8K_2008_0000939057-08-000121.txt"
    if not path.exists():
        pytest.skip(f"shared data set not present at {SHARED}")
    p = parse_8k_file(path)
    assert p.items == ["2.02", "9.01"]
    (ex,) = p.exhibits
    assert ex.type == "EX-99.1" and "Earns $1.51 per Diluted Share" in ex.text
    assert len(_signature(p)) < 1000


def test_truncated_pasted_fixture_never_crashes() -> None:
    raw = (ASSETS / "pasted_exhibit.txt").read_text()
    for cut in range(0, len(raw), 37):
        try:
            p = parse_8k(raw[:cut], "cut.txt")
        except UserError as e:
            assert str(e).startswith("cut.txt") and "\n" not in str(e)
            continue
        assert all(e.type.startswith("EX-") for e in p.exhibits)
        assert all(0 <= s.start <= s.end <= len(p.text) for s in p.boilerplate)


def test_lower_numbered_heading_inside_a_pasted_release_continues_it() -> None:
    # Review: a bare "Exhibit 1" line inside the pasted release started a new exhibit, so the
    # release's tail (its tables) left EX-99.1 and never reached the digest (EX-99 only).
    tables = "Condensed Statements of Income\n" + "Net income | 11,204 | 10,791\n" * 12
    p = parse_8k(
        HEAD + SIGNATURE + "\nExhibit 99.1\n\n" + RELEASE + "\nExhibit 1\n\n" + tables,
        "inline.txt",
    )
    assert [e.type for e in p.exhibits if e.text] == ["EX-99.1"]
    assert "Condensed Statements of Income" in p.exhibits[0].text


def test_item_heading_after_the_pasted_release_leaves_the_layout_alone() -> None:
    # "8-K, signature, exhibits" only: an item heading after the would-be exhibit means the
    # document is laid out otherwise, so nothing is split off (documented as conservative).
    later = "\nItem 7.01 Regulation FD Disclosure\n\nSlides are posted on our website.\n"
    p = parse_8k(HEAD + SIGNATURE + "\nExhibit 99.1\n\n" + RELEASE + later, "inline.txt")
    assert p.items == ["7.01", "8.01", "9.01"]
    assert [(e.type, e.text) for e in p.exhibits] == [("EX-99.1", "")]
    assert "[EX-99.1]" not in p.text
    assert p.text.index("Exhibit 99.1") < p.text.index("twelfth consecutive")


def test_one_long_line_after_an_exhibit_heading_is_not_a_pasted_exhibit() -> None:
    # At least 400 chars on 3+ lines: a single long line (a description, a cover sheet) is not.
    line = "Acme Corp today announced " + "a quarterly cash dividend of $0.10 per share; " * 10
    assert len(line) > 400
    p = parse_8k(HEAD + SIGNATURE + "\nExhibit 99.1\n\n" + line + "\n", "inline.txt")
    assert [(e.type, e.text) for e in p.exhibits] == [("EX-99.1", "")]
    assert p.text.rstrip().endswith(line.strip())
    assert line.strip() in _signature(p)


def test_pasted_exhibit_description_comes_from_the_first_listing() -> None:
    # Item 9.01 lists 99.1 before the exhibit index does: the first listing names the exhibit.
    index = "\nEXHIBIT INDEX\n\n99.1 | Earnings release of Acme Corp.\n"
    p = parse_8k(HEAD + SIGNATURE + "\nExhibit 99.1\n\n" + RELEASE + index, "inline.txt")
    assert [(e.type, e.description) for e in p.exhibits] == [
        ("EX-99.1", "Press release dated May 1, 2008.")
    ]
    assert p.exhibits[0].text.startswith("Acme Corp Declares Quarterly Dividend")
