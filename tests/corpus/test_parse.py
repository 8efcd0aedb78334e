"""Tests for corpus/parse.py and corpus/html.py on hand-made fixtures (tests/assets/parse) and,
when present, the shared edgar-8k reference set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filingcontrast.corpus.html import html_to_text
from filingcontrast.corpus.parse import (
    ITEM_TITLES,
    Parsed8K,
    measure_reference,
    parse_8k,
    parse_8k_file,
)
from filingcontrast.errors import UserError

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "parse"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "edgar-8k"

COVER = "FORM 8-K\n\nAcme Corp\n(Exact name of registrant as specified in its charter)\n\n"


def _parse_body(body: str) -> Parsed8K:
    return parse_8k(COVER + body, filename="inline.txt")


# --------------------------------------------------------------------------------------------
# Heading styles


@pytest.mark.parametrize(
    "heading",
    [
        "Item 2.02 Results of Operations and Financial Condition.",
        "Item 2.02. Results of Operations and Financial Condition",
        "ITEM 2.02 RESULTS OF OPERATIONS AND FINANCIAL CONDITION",
        "Item 2.02: Results of Operations and Financial Condition",
        "Item 2.02 - Results of Operations and Financial Condition",
        "Item 2.02 — Quarterly results",
        "Item 2. 02 Results of Operations and Financial Condition",
        "Item 2.02.",
        "ITEM 2.02",
        "Item 2.02 | Results of Operations and Financial Condition",
        "Item No. 2.02 Results of Operations and Financial Condition",
    ],
)
def test_heading_styles(heading: str) -> None:
    p = _parse_body(
        f"{heading}\n\nRevenue rose 10%.\n\nItem 9.01 Financial Statements and Exhibits\n"
    )
    assert p.items == ["2.02", "9.01"]
    assert p.sections["2.02"].startswith(heading.split("|")[0].strip()[:8])
    assert "Revenue rose 10%." in p.sections["2.02"]
    assert "Revenue" not in p.sections["9.01"]


def test_old_numbering() -> None:
    p = parse_8k_file(ASSETS / "old_style.txt")
    assert p.items == ["5", "7", "12"]
    assert "widget division" in p.sections["5"]
    assert p.sections["7"].startswith("Item 7.")
    # "See Item 7 below" is a mention inside item 5, not a heading.
    assert p.sections["5"].count("Item 7") == 1
    assert ITEM_TITLES["12"] == "Results of Operations and Financial Condition"
    assert ITEM_TITLES["5"].startswith("Other Events")


def test_old_and_modern_titles_cover_all_codes() -> None:
    modern = "1.01 1.02 1.03 1.04 1.05 2.01 2.02 2.03 2.04 2.05 2.06 3.01 3.02 3.03 4.01 4.02"
    modern += " 5.01 5.02 5.03 5.04 5.05 5.06 5.07 5.08 7.01 8.01 9.01"
    for code in modern.split() + [str(i) for i in range(1, 13)]:
        assert ITEM_TITLES[code]


def test_combined_heading_gives_both_items_the_same_section() -> None:
    p = parse_8k_file(ASSETS / "toc_combined.htm")
    assert p.form == "8-K/A"
    assert p.items == ["1.01", "2.03", "5.02", "8.01", "9.01"]
    assert p.sections["1.01"] == p.sections["2.03"]
    assert "$50 million credit agreement" in p.sections["2.03"]
    assert "dividend" in p.sections["8.01"] and "dividend" not in p.sections["5.02"]
    assert p.sections["9.01"].startswith("Item 9. 01")


@pytest.mark.parametrize(
    ("heading", "codes"),
    [
        ("Items 2.02 and 9.01 Results of Operations; Exhibits", ["2.02", "9.01"]),
        ("ITEMS 2.02 AND 9.01.", ["2.02", "9.01"]),
        ("Item 2.02 and Item 7.01. Results; Regulation FD Disclosure", ["2.02", "7.01"]),
        (
            "Items 1.01, 2.03 & 3.02 Entry into a Material Definitive Agreement",
            ["1.01", "2.03", "3.02"],
        ),
        (
            "Items 1.01(a) and 5.02(e) Amendment of a Material Definitive Agreement",
            ["1.01", "5.02"],
        ),
        ("Item 7.01 Regulation FD Disclosure and Item 8.01 Other Events", ["7.01", "8.01"]),
        ("Item2.02 Results of Operations", ["2.02"]),
    ],
)
def test_combined_heading_variants(heading: str, codes: list[str]) -> None:
    p = _parse_body(f"{heading}\n\nThe company did something.\n")
    assert p.items == codes
    assert all("did something" in p.sections[c] for c in codes)


def test_unknown_item_number_is_a_warning_not_an_item() -> None:
    p = parse_8k_file(ASSETS / "toc_combined.htm")
    assert "2.09" not in p.items
    assert any("2.09" in w for w in p.warnings)
    # The unknown heading still ends the previous section.
    assert "does not exist" not in p.sections["5.02"]


# --------------------------------------------------------------------------------------------
# Headings versus mentions, table of contents and exhibit lists


def test_mentions_in_prose_are_not_headings() -> None:
    p = parse_8k_file(ASSETS / "modern_full_submission.txt")
    assert p.items == ["2.02", "9.01"]  # "Item 7.01 of Form 8-K ..." is prose
    assert "As described in Item 2.02 above" in p.sections["2.02"]
    assert "Item 7.01 of Form 8-K" in p.sections["2.02"]


def test_prose_line_starting_with_item_is_not_a_heading() -> None:
    body = (
        "Item 8.01 Other Events\n\nThe board met.\n\n"
        "Item 2.02 of Form 8-K is not applicable, as the company has no results to report.\n"
    )
    p = _parse_body(body)
    assert p.items == ["8.01"]
    assert "not applicable" in p.sections["8.01"]


def test_toc_with_page_numbers_is_skipped() -> None:
    p = parse_8k_file(ASSETS / "toc_combined.htm")
    # the TOC row "Item 1.01 ... | 2" must not be the 1.01 heading
    assert p.sections["1.01"].startswith("Items 1.01 and 2.03")
    assert p.section_spans["1.01"][0] > p.text.index("Other Events | 3")


@pytest.mark.parametrize(
    "heading",
    [
        "Item 2.02 Results of Operations for the Quarter Ended March 31",
        "Item 1.01 Entry into a Material Definitive Agreement - Amendment No. 2",
    ],
)
def test_heading_title_ending_in_a_number_is_not_a_toc_line(heading: str) -> None:
    # Regression: a line ending in 1-3 digits was taken for a TOC entry and dropped, silently.
    code = heading.split()[1]
    p = _parse_body(f"{heading}\n\nThe company did something.\n\nItem 9.01 Exhibits\n")
    assert p.items == [code, "9.01"]
    assert "did something" in p.sections[code]


def test_toc_without_page_numbers_picks_the_body_heading() -> None:
    body = (
        "Item 2.02 Results of Operations and Financial Condition\n"
        "Item 9.01 Financial Statements and Exhibits\n\n"
        "Item 2.02 Results of Operations and Financial Condition\n\nSales doubled this quarter.\n\n"
        "Item 9.01 Financial Statements and Exhibits\n\n99.1 Press release\n"
    )
    p = _parse_body(body)
    assert p.items == ["2.02", "9.01"]
    assert "Sales doubled" in p.sections["2.02"]
    assert "99.1 Press release" in p.sections["9.01"]


def test_paged_toc_line_naming_every_item_of_the_filing_is_skipped() -> None:
    # A one-item filing: its paged TOC line names exactly the items the body headings name (not
    # a strict subset of them), with prose (an explanatory note) before the body heading. The
    # TOC line must still go, or its longer "section" (the note) beats the body heading's.
    note = (
        "EXPLANATORY NOTE\n\nThis amended report is filed to correct the date of the lease "
        "described below, which was misstated as March 1 in the report filed on February 20, "
        "2021; no other change is made.\n\n"
    )
    body = "Item 8.01 Other Events 2\nSignature Page 3\n\n" + note
    p = _parse_body(body + "Item 8.01 Other Events\n\nWe leased a new office.\n")
    assert p.items == ["8.01"]
    assert p.sections["8.01"] == "Item 8.01 Other Events\n\nWe leased a new office."
    (cover,) = [s for s in p.boilerplate if s.kind == "cover"]
    assert "EXPLANATORY NOTE" in p.text[cover.start : cover.end]


def test_exhibit_list_mentions_do_not_create_items() -> None:
    p = parse_8k_file(ASSETS / "modern_full_submission.txt")
    assert "furnished under Item 2.02" in p.sections["9.01"]
    assert p.items.count("2.02") == 1


def test_old_numbers_ignored_in_a_modern_filing() -> None:
    body = (
        "Item 8.01 Other Events\n\nWe moved offices.\n\n"
        "Item 7. Financial Statements and Exhibits\n\nnone\n"
    )
    assert _parse_body(body).items == ["8.01"]


# --------------------------------------------------------------------------------------------
# HTML to text


def test_tables_flattened_one_row_per_line() -> None:
    html = (
        "<table><tr><td>Revenue</td><td>&nbsp;</td><td>$</td><td>12.5</td></tr>"
        "<tr><td>Net loss</td><td>(</td><td>1.0</td><td>)</td></tr></table>"
    )
    assert html_to_text(html).split("\n") == ["Revenue | $12.5", "Net loss | (1.0)"]


def test_html_block_structure_nbsp_hidden_and_ixbrl() -> None:
    html = (
        "<html><body><div>First&nbsp;block<br>second line</div>"
        '<p>Para <b>bold</b>\nwrapped</p><div style="display: none">HIDDEN</div>'
        "<ix:header><ix:hidden>XBRL</ix:hidden></ix:header>"
        '<p>EPS <ix:nonFraction name="x">1.32</ix:nonFraction></p><script>var a;</script></body></html>'
    )
    text = html_to_text(html)
    assert text == "First block\nsecond line\n\nPara bold wrapped\n\nEPS 1.32"


def test_broken_html_is_repaired() -> None:
    assert html_to_text("<p>one <b>two<p>three</td></table><table><tr><td>a<td>b") == (
        "one two\n\nthree\n\na | b"
    )


def test_plain_text_table_columns_become_cells() -> None:
    p = parse_8k_file(ASSETS / "old_style.txt")
    assert "Net sales | $ 1,234 | $ 1,100" in p.sections["12"]


# --------------------------------------------------------------------------------------------
# Exhibits, form, company, boilerplate


def test_exhibits_in_sgml_full_submission() -> None:
    p = parse_8k_file(ASSETS / "modern_full_submission.txt")
    assert p.form == "8-K" and p.company == "EXAMPLE WIDGETS INC"
    ex = {e.type: e for e in p.exhibits}
    assert ex["EX-99.1"].description == "PRESS RELEASE"
    assert "Revenue | $12.5 | $11.2" in ex["EX-99.1"].text
    assert "First Quarter Results" in p.text  # exhibit text is part of the full text
    assert ex["EX-104"].text == ""  # named in the exhibit list only
    assert "HIDDEN XBRL" not in p.text


def test_exhibit_list_of_a_primary_document() -> None:
    p = parse_8k_file(ASSETS / "toc_combined.htm")
    assert [(e.type, e.description, e.text) for e in p.exhibits] == [
        ("EX-10.1", "Credit Agreement dated June 1, 2019", "")
    ]


def test_wrapped_form_name_is_not_an_exhibit_row() -> None:
    """Regression (a 1997 filing in the reference set): prose wrapped before "8-K is required
    to be filed" was listed as exhibit EX-8 with the description "K is required to be filed"."""
    from filingcontrast.corpus.parse import _listed_exhibits

    block = ("Item 7. Financial Statements and Exhibits\n99.1 Press release dated May 1\n"
             "The Registrant has caused this report on Form\n8-K is required to be filed.")  # fmt: skip
    assert [e.type for e in _listed_exhibits(block)] == ["EX-99.1"]


MAIN_8K = (
    "<html><body><p>FORM 8-K</p><p>Item 8.01 Other Events</p><p>We opened a plant.</p>"
    "<p>Item 9.01 Financial Statements and Exhibits</p><p>99.1 Press release</p></body></html>"
)
RELEASE_99 = "<html><body><p>Acme opens its Ohio plant</p></body></html>"
UUENCODED = 'begin 644 logo.jpg\nM_]C_X``02D9)1@`!`0$`2`!(``#_VP!#``,"`@,"`@,#`P,$`P,$!0@%\nend'


def _sgml(*docs: tuple[str, str, str], header_form: str | None = "8-K") -> str:
    """A full submission: optional SGML header, then one <DOCUMENT> per (type, filename, body)."""
    header = (
        f"<SEC-HEADER>\nCONFORMED SUBMISSION TYPE:\t{header_form}\n"
        "COMPANY CONFORMED NAME:\t\tACME CORP\n</SEC-HEADER>\n"
        if header_form
        else ""
    )
    blocks = "".join(
        f"<DOCUMENT>\n<TYPE>{typ}\n<SEQUENCE>{i + 1}\n<FILENAME>{name}\n<TEXT>\n{body}\n"
        "</TEXT>\n</DOCUMENT>\n"
        for i, (typ, name, body) in enumerate(docs)
    )
    return f"<SEC-DOCUMENT>\n{header}{blocks}</SEC-DOCUMENT>\n"


def test_sgml_graphic_xml_and_zip_documents_are_not_exhibits() -> None:
    raw = _sgml(
        ("8-K", "acme-8k.htm", MAIN_8K),
        ("EX-99.1", "ex991.htm", RELEASE_99),
        ("GRAPHIC", "logo.jpg", UUENCODED),
        ("XML", "FilingSummary.xml", "<FilingSummary><ReportType>XBRL</ReportType>"),
        ("ZIP", "0000000001-21-000001-xbrl.zip", UUENCODED.replace("logo.jpg", "x.zip")),
    )
    p = parse_8k(raw, "acme.txt")
    assert p.items == ["8.01", "9.01"]
    assert [(e.type, e.text) for e in p.exhibits] == [("EX-99.1", "Acme opens its Ohio plant")]
    assert p.text.endswith("[EX-99.1] Acme opens its Ohio plant\n\nAcme opens its Ohio plant")
    assert "begin 644" not in p.text and "FilingSummary" not in p.text and "XBRL" not in p.text


@pytest.mark.parametrize("header_form", ["8-K", None])
def test_sgml_main_document_is_the_8k_wherever_it_sits(header_form: str | None) -> None:
    # The 8-K <DOCUMENT> is the main one even when another document comes first.
    raw = _sgml(
        ("GRAPHIC", "logo.jpg", UUENCODED),
        ("EX-99.1", "ex991.htm", RELEASE_99),
        ("8-K", "acme-8k.htm", MAIN_8K),
        header_form=header_form,
    )
    p = parse_8k(raw, "acme.txt")
    assert p.form == "8-K" and p.items == ["8.01", "9.01"]
    assert "We opened a plant." in p.sections["8.01"]
    assert [(e.type, bool(e.text)) for e in p.exhibits] == [("EX-99.1", True)]
    assert not p.warnings


def test_boilerplate_spans() -> None:
    p = parse_8k_file(ASSETS / "modern_full_submission.txt")
    kinds = {s.kind: s for s in p.boilerplate}
    assert set(kinds) == {"cover", "signature", "forward_looking"}
    assert "FORM 8-K" in p.text[kinds["cover"].start : kinds["cover"].end]
    assert p.text[kinds["signature"].start :].startswith("SIGNATURES")
    assert "/s/ Jane Roe" in p.text[kinds["signature"].start : kinds["signature"].end]
    fls = p.text[kinds["forward_looking"].start : kinds["forward_looking"].end]
    assert fls.startswith("Forward-Looking Statements") and fls.endswith("Form 10-K.")
    assert "Contact" not in fls


def test_informative_sections_drop_boilerplate() -> None:
    p = parse_8k_file(ASSETS / "simulated.txt")
    assert p.items == ["2.02", "9.01"]
    assert "forward-looking" in p.sections["9.01"]
    info = p.informative_sections()
    assert "forward-looking" not in info["9.01"]
    assert "99.1 Press release" in info["9.01"]
    assert info["2.02"] == p.sections["2.02"]


def test_informative_paragraph_between_two_forward_looking_paragraphs_is_kept() -> None:
    # Two forward-looking paragraphs a short paragraph apart are two spans: only paragraphs
    # that touch (a blank line apart) merge, the news between them is no boilerplate.
    fls1 = "This report contains forward-looking statements within the meaning of the safe harbor."
    news = "The company opened a new plant in Ohio with 300 employees."
    fls2 = (
        "Forward-looking statements speak only as of today; we undertake no obligation to update."
    )
    p = _parse_body(f"Item 8.01 Other Events\n\n{fls1}\n\n{news}\n\n{fls2}\n\nShipping starts.\n")
    fls = [p.text[s.start : s.end] for s in p.boilerplate if s.kind == "forward_looking"]
    assert fls == [fls1, fls2]
    info = p.informative_sections()["8.01"]
    assert news in info and "Shipping starts." in info
    assert "forward-looking" not in info.lower()


def test_plain_text_simulated_filing() -> None:
    p = parse_8k_file(ASSETS / "simulated.txt")
    assert p.form == "8-K" and p.company == "Simco Industries Inc."
    assert "raised its full-year guidance" in p.sections["2.02"]
    assert [e.type for e in p.exhibits] == ["EX-99.1"]
    assert not p.warnings


def test_to_dict_and_summary() -> None:
    p = parse_8k_file(ASSETS / "modern_full_submission.txt")
    d = json.loads(json.dumps(p.to_dict()))
    assert d["items"] == ["2.02", "9.01"]
    assert d["exhibits"][0]["type"] == "EX-99.1"
    assert d["boilerplate"][0]["kind"] == "cover"
    s = p.summary()
    assert "2.02  Results of Operations and Financial Condition" in s
    assert "EX-99.1" in s and "forward_looking" in s


# --------------------------------------------------------------------------------------------
# Bad input


def test_non_8k_form_is_rejected() -> None:
    with pytest.raises(UserError, match=r"form_10k.htm: form 10-K is not an 8-K"):
        parse_8k_file(ASSETS / "form_10k.htm")


@pytest.mark.parametrize(
    "cover", ["Form 10-Q", "FORM 10\u2011K", "form 10-k", "FORM S\u20131", "Form 10-K405"]
)
def test_other_forms_on_the_cover_are_rejected_whatever_their_case_or_dash(cover: str) -> None:
    # Regression: "Form 10-Q" (not upper case) mentioning "Form 8-K" below was taken for an 8-K.
    raw = (
        f"<p>SECURITIES AND EXCHANGE COMMISSION</p><p>{cover}</p><p>ACME CORP</p>"
        "<p>Item 2. Management's Discussion</p>"
        "<p>As reported in our Current Report on Form 8-K, revenue grew.</p>"
    )
    with pytest.raises(UserError, match=r"x\.htm: form (10-Q|10-K|S-1|10-K405) is not an 8-K"):
        parse_8k(raw, filename="x.htm")


def test_amendment_with_a_non_ascii_hyphen_keeps_its_flag() -> None:
    p = parse_8k("FORM 8\u2011K/A\n\nItem 8.01 Other Events\n\nFixed.\n", filename="a.txt")
    assert p.form == "8-K/A"


def test_non_8k_sgml_type_is_rejected() -> None:
    raw = "<DOCUMENT>\n<TYPE>10-Q\n<TEXT>\nQuarterly report\n</TEXT>\n</DOCUMENT>"
    with pytest.raises(UserError, match="x.txt: form 10-Q is not an 8-K"):
        parse_8k(raw, filename="x.txt")


def test_amendment_is_accepted() -> None:
    raw = "<DOCUMENT>\n<TYPE>8-K/A\n<TEXT>\nItem 8.01 Other Events\n\nFixed a typo.\n</TEXT>"
    p = parse_8k(raw.encode(), filename="a.txt")
    assert p.form == "8-K/A" and p.items == ["8.01"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty document"),
        ("  \n\t ", "empty document"),
        (b"\x00\x01\x02binary", "binary file"),
        ("<html><body><p></p><div style='x'></div></body>", "no readable text"),
        ("Just some words with no cover and no headings.", "not an 8-K"),
    ],
)
def test_bad_input_raises_one_line_user_error(raw: str | bytes, message: str) -> None:
    with pytest.raises(UserError, match=message) as err:
        parse_8k(raw, filename="bad.htm")
    assert str(err.value).startswith("bad.htm: ") and "\n" not in str(err.value)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "cp1252"])
def test_text_encodings_with_bom_or_windows_codepage(encoding: str) -> None:
    doc = "<html><body><p>FORM 8-K</p><p>Item 8.01 Other Events.</p><p>Caf\xe9 \u2019</p></body>"
    raw = doc.encode(encoding)
    if encoding == "utf-16-be":
        raw = b"\xfe\xff" + raw  # a big-endian byte-order mark
    parsed = parse_8k(raw, filename="x.htm")
    assert parsed.items == ["8.01"] and "Caf\xe9 \u2019" in parsed.text


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="missing.htm: cannot read file"):
        parse_8k_file(tmp_path / "missing.htm")
    with pytest.raises(UserError, match="cannot read file"):
        parse_8k_file(tmp_path)  # a directory


def test_no_headings_is_a_warning() -> None:
    p = _parse_body("The company has nothing to report under any item.\n")
    assert p.items == [] and p.sections == {}
    assert "no item headings found" in p.warnings


def test_undecodable_bytes_fall_back() -> None:
    raw = (COVER + "Item 8.01 Other Events\n\nCaf\xe9 opened.\n").encode("cp1252")
    assert "Café opened." in parse_8k(raw).sections["8.01"]


# --------------------------------------------------------------------------------------------
# Shared reference set


def test_reference_set_item_agreement() -> None:
    if not (SHARED / "index.jsonl").exists():
        pytest.skip(f"shared data set not present at {SHARED}")
    res = measure_reference(SHARED)
    assert res["n_filings"] >= 300
    assert res["item_set_accuracy"] >= 0.95, res["misses"]
    assert res["mean_section_jaccard"] >= 0.9


# --------------------------------------------------------------------------------------------
# Robustness: any input gives a Parsed8K or a UserError, never another exception


@pytest.mark.parametrize(
    "name", ["modern_full_submission.txt", "old_style.txt", "toc_combined.htm"]
)
def test_truncated_fixtures_never_crash(name: str) -> None:
    raw = (ASSETS / name).read_bytes()
    for cut in range(0, len(raw), max(1, len(raw) // 60)):
        try:
            p = parse_8k(raw[:cut], filename=name)
        except UserError as e:
            assert str(e).startswith(name) and "\n" not in str(e)
            continue
        assert set(p.items) == set(p.sections)
        assert all(0 <= s.start <= s.end <= len(p.text) for s in p.boilerplate)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<p>",
                "</p>",
                "<table>",
                "<tr>",
                "<td>",
                "</td>",
                "Item",
                " 2.02",
                " 5.",
                "\n",
                "FORM 8-K",
                "SIGNATURES",
                "forward-looking statements",
                "<DOCUMENT>",
                "<TYPE>8-K",
                "<TEXT>",
                "99.1 Press release",
                "&nbsp;",
                "<b>",
                "Items 1.01 and 9.01",
                "x",
            ]
        ),
        max_size=40,
    )
)
def test_random_markup_gives_parse_or_user_error(parts: list[str]) -> None:
    try:
        p = parse_8k("".join(parts), filename="h.htm")
    except UserError:
        return
    assert p.form.startswith("8-K")
    assert set(p.items) == set(p.sections) == set(p.section_spans)


def test_section_group_headings_are_trimmed() -> None:
    body = (
        "Section 1 - Registrant's Business and Operations\n\n"
        "Item 1.01 Entry into a Material Definitive Agreement\n\nWe signed a lease.\n\n"
        "Section 2 — Financial Information\n\n"
        "Item 2.02 Results of Operations and Financial Condition\n\nSales rose.\n"
    )
    p = _parse_body(body)
    assert p.sections["1.01"].endswith("We signed a lease.")
    assert p.text[p.section_spans["1.01"][1] :].lstrip().startswith("Section 2")


def test_wrapped_prose_line_starting_with_item_is_not_a_heading() -> None:
    body = (
        "Item 8.01 Other Events\n\nThe company is furnishing the information required by\n"
        "Item 2.02 The Company furnished its quarterly results in a\n"
        "press release on the same day.\n"
    )
    p = _parse_body(body)
    assert p.items == ["8.01"]
    assert "press release on the same day" in p.sections["8.01"]


def test_cli_parse(capsys: pytest.CaptureFixture[str]) -> None:
    from filingcontrast.cli import main

    assert main(["parse", str(ASSETS / "simulated.txt")]) == 0
    assert "2.02  Results of Operations" in capsys.readouterr().out
    assert main(["parse", "--json", str(ASSETS / "simulated.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == ["2.02", "9.01"]
    assert main(["parse", str(ASSETS / "form_10k.htm")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not an 8-K" in err


def test_hard_wrapped_prose_with_old_item_number_is_not_a_heading() -> None:
    body = (
        "Item 2. Acquisition or Disposition of Assets\n\nWe bought Widget Co.\n\n"
        "Item 7. Financial Statements and Exhibits\n\n"
        "Financial statements of the business acquired by the registrant referred to in\n"
        "Item 2. The registrant will file the required statements within 60 days.\n"
    )
    p = _parse_body(body)
    assert p.items == ["2", "7"]
    assert "We bought Widget Co." in p.sections["2"]
    assert "within 60 days" in p.sections["7"]


def test_deeply_nested_broken_html_keeps_its_text() -> None:
    text = html_to_text("<html><body>" + "<font>w " * 1200 + "end")
    assert text.split() == ["w"] * 1200 + ["end"]
    assert "end" in html_to_text("<table><tr><td>" * 1500 + "end")


def test_xbrl_documents_of_a_submission_are_not_exhibits():
    """Regression: parse kept EX-101.* (XBRL data) as exhibits and appended its XML to the
    text, while `ingest edgar` leaves it out of the store."""
    path = (ASSETS.parent / "edgar" / "www.sec.gov" / "Archives" / "edgar" / "data" / "320193"
            / "000032019321000010" / "0000320193-21-000010.txt")  # fmt: skip
    p = parse_8k_file(path)
    assert [e.type for e in p.exhibits] == ["EX-99.1"]
    assert "<xbrli" not in p.text and "xbrl" not in p.text.lower()


# --------------------------------------------------------------------------------------------
# Second-pass audit: decoding, item numbers, section limits, boilerplate, exhibit lists


def test_byte_order_mark_is_not_part_of_the_text() -> None:
    # A UTF-8 BOM (str or bytes) before a heading on the first line must not hide the heading.
    body = "Item 8.01 Other Events\n\nWe moved.\n"
    for raw in ("\ufeff" + body, body.encode("utf-8-sig")):
        p = parse_8k(raw, filename="bom.txt")
        assert p.items == ["8.01"] and p.text.startswith("Item 8.01")
        assert p.sections["8.01"] == "Item 8.01 Other Events\n\nWe moved."


def test_no_cover_but_item_headings_is_accepted_with_a_warning() -> None:
    p = parse_8k("Item 8.01 Other Events\n\nWe moved.\n", filename="x.txt")
    assert p.form == "8-K" and p.items == ["8.01"]
    assert p.warnings == ["no 'FORM 8-K' on the cover page; assumed 8-K from its item headings"]


@pytest.mark.parametrize(
    "raw",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00word/document.xml",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 5 >>\nstream\nx\x9c\x00\x01\x02",
    ],
)
def test_binary_files_are_refused_with_one_line(raw: bytes) -> None:
    # The NUL bytes of images, zip-based office files and PDFs sit a few bytes in, not first.
    with pytest.raises(UserError, match=r"^logo\.png: binary file") as err:
        parse_8k(raw, filename="logo.png")
    assert "\n" not in str(err.value)


def test_bytes_undefined_in_cp1252_fall_back_to_latin1() -> None:
    raw = (COVER + "Item 8.01 Other Events\n\nCaf\xe9 \x81 opened.\n").encode("latin-1")
    assert "Caf\xe9 \x81 opened." in parse_8k(raw).sections["8.01"]


def test_numbers_that_are_not_item_codes_stay_in_the_section() -> None:
    # A 1998 filing quoting an agreement's "Item 2.2": neither old item 2 nor an item "2.2".
    raw = (
        "FORM 8-K\n\nItem 5. Other Events\n\nThe merger agreement provides:\n\n"
        "Item 2.2 Closing Conditions\n\nThe closing occurs in June.\n\n"
        "Item 7. Financial Statements and Exhibits\n\n(c) Exhibits\n\n99 Press release\n"
    )
    p = parse_8k(raw, filename="old.txt")
    assert p.items == ["5", "7"] and not p.warnings
    assert "The closing occurs in June." in p.sections["5"]


@pytest.mark.parametrize(
    ("heading", "codes"),
    [
        ("Items 5.02/9.01 Departure of Directors; Exhibits", ["5.02", "9.01"]),
        ("Item 5.02 Departure of Directors; Item 9.01 Exhibits", ["5.02", "9.01"]),
        ("ITEM | 2.02 | RESULTS OF OPERATIONS AND FINANCIAL CONDITION", ["2.02"]),
    ],
)
def test_more_heading_layouts(heading: str, codes: list[str]) -> None:
    p = _parse_body(f"{heading}\n\nThe company did something.\n")
    assert p.items == codes
    assert all("did something" in p.sections[c] for c in codes)


def test_heading_right_after_a_finished_sentence_line_is_a_heading() -> None:
    # No blank line between a paragraph and the next heading (<br> layouts): the previous line
    # ends its sentence, so "Item 8.01 Dividend Declaration" is not wrapped prose.
    body = (
        "Item 5.02 Departure of Directors\n\n"
        "The board of directors approved the plan on May 1, 2020 by a vote.\n"
        "Item 8.01 Dividend Declaration\nThe board declared a dividend.\n"
    )
    p = _parse_body(body)
    assert p.items == ["5.02", "8.01"]
    assert "dividend" not in p.sections["5.02"]
    assert p.sections["8.01"].endswith("The board declared a dividend.")


def test_section_stops_at_the_signature_even_when_a_heading_follows_it() -> None:
    body = (
        "Item 8.01 Other Events\n\nWe moved.\n\nSIGNATURES\n\nBy: /s/ Jane Roe\n\n"
        "Item 9.01 Financial Statements and Exhibits\n\n99.1 Press release dated May 1\n"
    )
    p = _parse_body(body)
    assert p.sections["8.01"] == "Item 8.01 Other Events\n\nWe moved."


def test_item_9_01_placed_after_the_signature_keeps_its_exhibit_list() -> None:
    body = (
        "Item 8.01 Other Events\n\nWe moved.\n\nSIGNATURES\n\nBy: /s/ Jane Roe\n\n"
        "Item 9.01 Financial Statements and Exhibits\n\n99.1 Press release dated May 1\n"
    )
    p = _parse_body(body)
    assert "99.1 Press release" in p.sections["9.01"]
    assert [e.type for e in p.exhibits] == ["EX-99.1"]


def test_exhibit_index_line_in_a_table_of_contents_does_not_end_the_sections() -> None:
    body = (
        "Item 8.01 Other Events\nExhibit Index\n\n"
        "Item 8.01 Other Events\n\nWe moved our headquarters to Ohio.\n\n"
        "SIGNATURES\n\nBy: /s/ Jane Roe\n\nEXHIBIT INDEX\n\n99.1 | Press release dated May 1\n"
    )
    p = _parse_body(body)
    assert p.sections["8.01"] == "Item 8.01 Other Events\n\nWe moved our headquarters to Ohio."
    assert [(e.type, e.description) for e in p.exhibits] == [
        ("EX-99.1", "Press release dated May 1")
    ]


@pytest.mark.parametrize("index", ["EXHIBIT INDEX", "Index to Exhibits", "Exhibit List:"])
def test_exhibit_index_after_the_signature_lists_exhibits(index: str) -> None:
    body = (
        "Item 9.01 Financial Statements and Exhibits\n\nSee the Exhibit Index below.\n\n"
        f"SIGNATURES\n\nBy: /s/ Jane Roe\n\n{index}\n\n99.1 | Press release dated May 1\n"
    )
    p = _parse_body(body)
    assert [(e.type, e.description) for e in p.exhibits] == [
        ("EX-99.1", "Press release dated May 1")
    ]
    (sig,) = [s for s in p.boilerplate if s.kind == "signature"]
    assert "Press release" not in p.text[sig.start : sig.end]


@pytest.mark.parametrize(
    "sentence",
    [
        "Pursuant to the requirements of the Securities Exchange Act of 1934, the registrant "
        "has duly caused this report to be signed.",
        "Pursuant to the requirements of the Securities Exchange Act of 1934, as amended, the "
        "registrant has duly caused this report to be signed.",
    ],
)
def test_signature_without_a_signatures_heading(sentence: str) -> None:
    p = _parse_body(f"Item 8.01 Other Events\n\nWe moved.\n\n{sentence}\n\nBy: /s/ Jane Roe\n")
    assert p.sections["8.01"] == "Item 8.01 Other Events\n\nWe moved."
    (sig,) = [s for s in p.boilerplate if s.kind == "signature"]
    assert p.text[sig.start :].startswith("Pursuant to")


def test_long_body_paragraphs_mentioning_forward_looking_statements_are_not_boilerplate() -> None:
    # Over 4,000 chars is body text: neither a forward-looking paragraph nor its continuation.
    long_fls = "The plan has no forward-looking statements. " + "Plant output grew. " * 230
    long_risk = "Risks of the plant were reviewed by the board. " + "Output grew again. " * 230
    fls = "This report contains forward-looking statements within the safe harbor."
    p = _parse_body(f"Item 8.01 Other Events\n\n{long_fls}\n\n{fls}\n\n{long_risk}\n")
    spans = [p.text[s.start : s.end] for s in p.boilerplate if s.kind == "forward_looking"]
    assert spans == [fls]
    info = p.informative_sections()["8.01"]
    assert long_fls.strip() in info and long_risk.strip() in info


def test_safe_harbor_paragraph_starts_and_extends_a_forward_looking_span() -> None:
    fls = "This release contains forward-looking statements."
    safe = "Safe Harbor Statement"
    risk = "Actual results may differ materially because of risks and uncertainties."
    p = _parse_body(f"Item 8.01 Other Events\n\n{fls}\n\n{safe}\n\n{risk}\n\nShipping starts.\n")
    spans = [p.text[s.start : s.end] for s in p.boilerplate if s.kind == "forward_looking"]
    assert spans == [f"{fls}\n\n{safe}\n\n{risk}"]
    p = _parse_body(
        f"Item 8.01 Other Events\n\nWe moved.\n\n{safe}\n\n{risk}\n\nShipping starts.\n"
    )
    info = p.informative_sections()["8.01"]
    assert "We moved." in info and "Shipping starts." in info
    assert safe not in info and "Actual results" not in info


def test_cover_without_item_headings_runs_to_the_last_cover_line() -> None:
    raw = (
        "FORM 8-K\n\nACME CORP\n(Exact name of registrant as specified in its charter)\n"
        "Commission File Number: 1-234\n"
        "Registrant's telephone number, including area code: 555-0100\n"
        "Emerging growth company [ ]\n\nThe company has nothing to report.\n"
    )
    p = parse_8k(raw, filename="x.txt")
    (cover,) = [s for s in p.boilerplate if s.kind == "cover"]
    assert p.text[cover.start : cover.end].endswith("Emerging growth company [ ]")
    assert p.text[cover.end :].strip() == "The company has nothing to report."


def test_page_numbers_and_toc_backlinks_are_removed_from_plain_text() -> None:
    from filingcontrast.corpus.parse import document_text

    body = "Line one\n\n- 2 -\n\nLine two\nPage 3\n  7  \nTable of Contents\nLine three\n"
    lines = [line for line in document_text(body).split("\n") if line]
    assert lines == ["Line one", "Line two", "Line three"]


def test_old_item_7_exhibit_list_names_the_exhibits() -> None:
    raw = (
        "FORM 8-K\n\nItem 2. Acquisition or Disposition of Assets\n\nWe bought a building.\n\n"
        "Item 7. Financial Statements and Exhibits\n\n(a) Financial statements of the property "
        "at\n500 Main Street, Springfield, will be filed by amendment.\n\n(c) Exhibits\n\n"
        "99 Press release dated May 1, 1998\n23 Consent of Ernst & Young LLP\n"
    )
    p = parse_8k(raw, filename="old.txt")
    assert [(e.type, e.description, e.text) for e in p.exhibits] == [
        ("EX-99", "Press release dated May 1, 1998", ""),
        ("EX-23", "Consent of Ernst & Young LLP", ""),
    ]


def test_exhibit_letter_suffix_is_upper_case_like_edgar_types() -> None:
    main = MAIN_8K.replace("99.1 Press release", "10.2a Side letter to the credit agreement")
    raw = _sgml(("8-K", "acme-8k.htm", main), ("EX-10.2A", "ex102a.htm", RELEASE_99))
    p = parse_8k(raw, "acme.txt")
    assert [(e.type, bool(e.text)) for e in p.exhibits] == [("EX-10.2A", True)]


def test_lower_case_sgml_types_are_normalised() -> None:
    raw = _sgml(("8-k", "acme-8k.htm", MAIN_8K), ("ex-99.1", "ex991.htm", RELEASE_99))
    p = parse_8k(raw, "acme.txt")
    assert p.items == ["8.01", "9.01"]
    assert [(e.type, e.text) for e in p.exhibits] == [("EX-99.1", "Acme opens its Ohio plant")]


def test_exhibit_document_without_text_falls_back_to_its_listing() -> None:
    # An exhibit <DOCUMENT> that is only an image has no text: the exhibit list names it.
    main = MAIN_8K.replace("99.1 Press release", "99.2 Investor presentation slides")
    image_only = "<html><body><img src='slide1.jpg'></body></html>"
    raw = _sgml(("8-K", "acme-8k.htm", main), ("EX-99.2", "ex992.htm", image_only))
    p = parse_8k(raw, "acme.txt")
    assert [(e.type, e.description, e.text) for e in p.exhibits] == [
        ("EX-99.2", "Investor presentation slides", "")
    ]


@pytest.mark.parametrize(
    "line",
    [
        "(Exact name of registrant as specified in its charter)",
        "(Exact name of the registrant as specified in its charter)",
        "(EXACT NAME OF REGISTRANT AS SPECIFIED IN CHARTER)",
    ],
)
def test_company_from_the_cover_page(line: str) -> None:
    p = parse_8k(f"FORM 8-K\n\nAcme Widgets, Inc.\n{line}\n\nItem 8.01 Other Events\n\nx\n")
    assert p.company == "Acme Widgets, Inc."


def test_exhibit_listed_twice_keeps_its_first_description() -> None:
    # Item 9.01 and the exhibit index both list 99.1: the item's (first) wording is kept, as for
    # pasted exhibits.
    body = (
        "Item 9.01 Financial Statements and Exhibits\n\n"
        "99.1 Press release dated May 1, 2020 announcing the merger\n\n"
        "SIGNATURES\n\nBy: /s/ Jane Roe\n\nEXHIBIT INDEX\n\n99.1 | Press release\n"
    )
    p = _parse_body(body)
    assert [(e.type, e.description) for e in p.exhibits] == [
        ("EX-99.1", "Press release dated May 1, 2020 announcing the merger")
    ]


@pytest.mark.parametrize("sep", [" ", " | ", " - ", " \u2013 ", ": ", " \u2014 "])
def test_exhibit_list_separators(sep: str) -> None:
    body = (
        "Item 9.01 Financial Statements and Exhibits\n\n(d) Exhibits\n\n"
        f"Exhibit 99.1{sep}Press release dated May 1, 2020\n"
    )
    p = _parse_body(body)
    assert [(e.type, e.description) for e in p.exhibits] == [
        ("EX-99.1", "Press release dated May 1, 2020")
    ]
