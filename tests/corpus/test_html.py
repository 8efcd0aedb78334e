"""corpus/html.py on its own: nested tables, and markup the reader never sees (the inline-XBRL
header, the `hidden` attribute, hidden table rows)."""

from __future__ import annotations

from filingcontrast.corpus.html import html_to_text


def test_nested_table_rows_are_emitted_once_inside_their_cell() -> None:
    # The rows of a table nested in a cell belong to that cell's text, never a line of the
    # outer table's own (they were emitted twice: in the cell and again as outer rows).
    html = (
        "<table><tr><td>Outer</td><td><table><tr><td>Inner A</td><td>1</td></tr>"
        "<tr><td>Inner B</td></tr></table></td></tr><tr><td>Last</td></tr></table>"
    )
    text = html_to_text(html)
    assert text.split("\n") == ["Outer | Inner A | 1 Inner B", "Last"]
    assert text.count("Inner B") == 1


def test_inline_xbrl_header_is_dropped_whatever_it_contains() -> None:
    # ix:header holds ix:references / ix:resources (contexts, units), not only ix:hidden.
    html = (
        "<html><body><ix:header><ix:references><link:schemaRef href='x.xsd'/>SCHEMA REFS"
        "</ix:references><ix:resources><xbrli:context id='c1'>CONTEXT 0000320193"
        "</xbrli:context></ix:resources></ix:header><p>Visible text</p></body></html>"
    )
    assert html_to_text(html) == "Visible text"


def test_elements_with_the_hidden_attribute_are_dropped() -> None:
    html = '<p>Shown</p><div hidden>Secret</div><p hidden="hidden">Also secret</p><span>End</span>'
    assert html_to_text(html) == "Shown\n\nEnd"


def test_hidden_table_rows_are_dropped() -> None:
    html = (
        "<table><tr><td>Row 1</td></tr><tr style='display:none'><td>Row 2</td></tr>"
        "<tr hidden><td>Row 3</td></tr><tr><td>Row 4</td><td style='display: none'>x</td></tr>"
        "</table>"
    )
    assert html_to_text(html).split("\n") == ["Row 1", "Row 4"]


# --------------------------------------------------------------------------------------------
# Markup the reader never sees, whitespace, financial cells, lists, <pre>, bytes


def test_comments_processing_instructions_and_styles_leave_no_text() -> None:
    # EDGAR converters leave "<!-- Field: Page; Sequence: 2 -->" comments all over, and some
    # documents carry a <style> block inside <body>.
    html = (
        "<html><body><style>p { color: red }</style>"
        "<p>Net<!-- Field: Page; Sequence: 2 --> sales rose.</p><?xml-stylesheet href='a'?>"
        "<table><tr><td>Revenue<!-- col --></td><td>12.5</td></tr></table></body></html>"
    )
    assert html_to_text(html) == "Net sales rose.\n\nRevenue | 12.5"


def test_xml_declaration_of_inline_xbrl_keeps_the_table_structure() -> None:
    # Inline-XBRL primary documents start with <?xml ... encoding ...?>: lxml refuses that in a
    # str, so it must be stripped, not make the whole file fall back to tag stripping (which
    # would lose the table rows and let the ix:header text through).
    html = (
        "<?xml version='1.0' encoding='utf-8'?>\n<html><body><ix:header><ix:hidden>dei:Doc"
        "</ix:hidden></ix:header><p>Item 2.02 Results</p><table><tr><td>Revenue</td>"
        "<td>$</td><td>12.5</td></tr><tr><td>Net income</td><td>3.1</td></tr></table>"
        "</body></html>"
    )
    assert html_to_text(html).split("\n") == [
        "Item 2.02 Results",
        "",
        "Revenue | $12.5",
        "Net income | 3.1",
    ]


def test_utf8_bytes_are_decoded_as_utf8() -> None:
    html = "<p>Caf\xe9 \u2013 5 \u20ac \u2019</p>".encode()
    assert html_to_text(html) == "Caf\xe9 \u2013 5 \u20ac \u2019"


def test_unicode_spaces_and_zero_width_spacer_cells() -> None:
    # Workiva-made filings fill empty cells with &#8203; and space words with &ensp; / thin
    # spaces: spacer cells vanish, the odd spaces become plain ones.
    html = (
        "<p>Item&#8194;8.01&#8201;Other&#8195;Events</p>"
        "<table><tr><td>Revenue</td><td>&#8203;</td><td>12.5</td></tr></table>"
    )
    assert html_to_text(html).split("\n") == ["Item 8.01 Other Events", "", "Revenue | 12.5"]


def test_percent_and_currency_cells_are_glued_to_their_number() -> None:
    html = (
        "<table><tr><td>Growth</td><td>12.5</td><td>%</td></tr>"
        "<tr><td>Sales</td><td>\u20ac</td><td>1,234</td></tr>"
        "<tr><td>Margin</td><td>(</td><td>3.0</td><td>)%</td></tr></table>"
    )
    assert html_to_text(html).split("\n") == [
        "Growth | 12.5%",
        "Sales | \u20ac1,234",
        "Margin | (3.0)%",
    ]


def test_decimal_aligned_exhibit_number_cells_are_joined() -> None:
    # Exhibit lists laid out with the number split at the decimal point: "10" | ".1".
    html = (
        "<table><tr><td>10</td><td>.1</td><td>Credit Agreement</td></tr>"
        "<tr><td>99</td><td>.1</td><td>Press release</td></tr></table>"
    )
    assert html_to_text(html).split("\n") == ["10.1 | Credit Agreement", "99.1 | Press release"]


def test_list_items_are_lines_of_their_own() -> None:
    html = "<ul><li>First risk</li><li>Second risk</li></ul><p>After</p>"
    lines = [line for line in html_to_text(html).split("\n") if line]
    assert lines == ["First risk", "Second risk", "After"]


def test_pre_keeps_its_line_breaks_inside_inline_tags() -> None:
    # Old EDGAR HTML wraps a whole plain-text filing in <PRE><FONT>...</FONT></PRE>.
    html = "<pre><font size=2>Item 5.  Other Events\nThe company sold\nits plant.</font></pre>"
    assert html_to_text(html).split("\n") == [
        "Item 5. Other Events",
        "The company sold",
        "its plant.",
    ]


def test_stray_cells_outside_a_table_keep_their_words_apart() -> None:
    # Broken markup: <td>s without <table>/<tr>; the words must not run together.
    assert html_to_text("<div>Name</div><td>Jane</td><td>Roe</td>").split() == [
        "Name",
        "Jane",
        "Roe",
    ]
