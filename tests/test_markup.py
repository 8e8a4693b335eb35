from newsletter.markup import MarkdownLink, links, to_html, to_text


def test_raw_html_is_escaped_not_passed_through():
    html = to_html('Hello <script>alert(1)</script> and <b onclick="x()">bold</b>\n\n<div>block</div>')
    assert "<script" not in html and "<b " not in html and "<div" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<p>&lt;div&gt;block&lt;/div&gt;</p>" in html


def test_commonmark_links_emphasis_lists():
    html = to_html("Read **this** and [the guide](https://example.org/g).\n\n- one\n- two\n\n1. first\n")
    assert "<strong>this</strong>" in html
    assert '<a href="https://example.org/g">the guide</a>' in html
    assert "<ul>\n<li>one</li>" in html and "<ol>\n<li>first</li>" in html


def test_unsafe_link_targets_and_images_are_not_rendered():
    html = to_html("[x](javascript:alert(1)) ![pic](https://tracker.example.org/p.gif)")
    assert "javascript:" not in html.replace("[x](javascript:alert(1))", "")
    assert "<img" not in html  # an image is offered as a link, never loaded
    assert '<a href="https://tracker.example.org/p.gif">pic</a>' in html


def test_empty_field_renders_nothing():
    assert to_html(None) == "" and to_text(None) == "" and links(None) == []


def test_links_lists_every_link_with_its_line():
    text = "First line [the report](https://example.org/r).\nSecond <https://example.org/auto>\n\nThird: see http://example.org/bare."
    assert links(text) == [
        MarkdownLink("the report", "https://example.org/r", 0),
        MarkdownLink("https://example.org/auto", "https://example.org/auto", 1),
        MarkdownLink("http://example.org/bare", "http://example.org/bare", 3),
    ]


def test_text_keeps_every_url_and_wraps_without_breaking_them():
    url = "https://improvement.example.org/a/very/long/path/that/is/longer/than/the/line/width/report.pdf"
    text = to_text(f"Please read [the full report]({url}) before the meeting on Tuesday, and *also* " + "word " * 30)
    assert f"the full report ({url})" in text.replace("\n", " ")
    assert url in text.split("\n")[0] + text.split("\n")[1]  # the URL sits whole on one line
    assert all(len(line) <= 76 or url in line for line in text.split("\n"))
    assert "*" not in text


def test_text_lists_and_paragraphs():
    text = to_text(
        "Intro paragraph.\n\n- emotional abuse\n- economic abuse\n  - nested\n\n1. first\n2. second\n\nLast.",
        indent="  ",
    )
    assert text == (
        "  Intro paragraph.\n\n"
        "  - emotional abuse\n  - economic abuse\n    - nested\n\n"
        "  1. first\n  2. second\n\n"
        "  Last."
    )


def test_text_of_a_link_whose_text_is_its_url_or_an_address():
    assert to_text("<https://example.org/x>") == "https://example.org/x"
    assert to_text("[Morgan](mailto:morgan@example.org)") == "Morgan (morgan@example.org)"
