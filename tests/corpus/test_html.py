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
