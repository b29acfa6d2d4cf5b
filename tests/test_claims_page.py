"""The Claims appendix (``claims.render_page``): one card per claim and reported number, with the
classes and ids the book's browser test and the chapters' check marks rely on."""

from html.parser import HTMLParser

from markdown_it import MarkdownIt

from wganbook.bookkit import claims

_VOID = {"br", "img", "hr", "input", "meta", "link", "wbr"}


class _Tree(HTMLParser):
    """Elements of an HTML fragment (tag, attributes, text, parent) with a check that tags balance."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements, self.stack, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parent": self.stack[-1] if self.stack else None}
        el["classes"] = set((el["attrs"].get("class") or "").split())
        self.elements.append(el)
        if tag not in _VOID:
            self.stack.append(el)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1]["tag"] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1]['tag'] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data

    def find(self, cls, within=None):
        return [e for e in self.elements if cls in e["classes"] and (within is None or self.inside(e, within))]

    @staticmethod
    def inside(el, ancestor):
        while el is not None:
            if el is ancestor:
                return True
            el = el["parent"]
        return False


def _entry(cid, statement, chapter, stored, lo, med, hi, **extra):
    return dict(
        id=cid,
        chapter=chapter,
        statement=statement,
        source="this book",
        stored=stored,
        min=lo,
        median=med,
        max=hi,
        runs=5,
        digest="d",
        **extra,
    )


LEDGER = {
    "seeds": [0, 1, 2, 3, 4],
    "claims": [
        _entry(
            "ch1.sample-w1-excess-small",
            "W1 exceeds |theta| by < 0.05 & n = 1000 <script>",
            "01_distances",
            0.00798123,
            0.0070099,
            0.00798123,
            0.023456,
            held=5,
        ),
        _entry("ch1.weak", "a claim | with a pipe", "01_distances", -0.49, -0.52, -0.507, 12345.6, held=4),
        _entry("ch2.plan", "the plan is a matching", "02_duality", 64, 64, 64, 64, held=5),
    ],
    "reported": [
        _entry("ch1.spread", "5%-95% range of the slope", "01_distances", 0.111, 0.0489, 0.111, 0.139, paper=None),
        dict(
            _entry("ch2.fd", "FD, r = real-fake", "02_duality", 14.5, 9.59, 12.7, 14.5, paper=18.4),
            source="WGAN-div (Wu et al. 2018)",
        ),
    ],
}
WHERE = {
    "ch1.sample-w1-excess-small": {"page": "01_distances.html", "section": "Checking <the> closed forms"},
    "ch1.spread": {"page": "01_distances.html", "section": "Figure 2"},
    "ch2.fd": {"page": "02_duality.html", "section": "The six strategies"},
}


def _page():
    page = claims.render_page(LEDGER, WHERE)
    tree = _Tree()
    tree.feed(page)
    tree.close()
    return page, tree


def test_each_claim_is_a_card_with_the_contracts_classes_and_its_anchor():
    page, tree = _page()
    assert not tree.errors and not tree.stack, tree.errors
    lists = tree.find("wganbook-claims")
    assert len(lists) == 2  # one list per chapter with claims
    cards = [tree.find("wganbook-claim", within=lst) for lst in lists]
    assert [[c["attrs"]["id"] for c in cs] for cs in cards] == [
        ["claim-ch1-sample-w1-excess-small", "claim-ch1-weak"],
        ["claim-ch2-plan"],
    ]
    # the ids are the ones the chapters' check marks link to
    assert cards[0][0]["attrs"]["id"] == claims.anchor("ch1.sample-w1-excess-small")
    assert 'href="claims.html#claim-ch1-sample-w1-excess-small"' in claims._mark(
        "ch1.sample-w1-excess-small", "s", True
    )
    for card in cards[0] + cards[1]:
        for part in (
            "wganbook-claim-statement",
            "wganbook-claim-value",
            "wganbook-claim-spread",
            "wganbook-claim-held",
            "wganbook-claim-id",
            "wganbook-claim-where",
            "wganbook-claim-source",
        ):
            assert len(tree.find(part, within=card)) == 1, (card["attrs"]["id"], part)
        (code,) = tree.find("wganbook-claim-id", within=card)
        assert code["tag"] == "code" and claims.anchor(code["text"]) == card["attrs"]["id"]
    first = cards[0][0]
    assert tree.find("wganbook-claim-id", within=first)[0]["text"] == "ch1.sample-w1-excess-small"


def test_value_spread_and_held_are_shown_as_formatted():
    page, tree = _page()
    first, weak = tree.find("wganbook-claim")[:2]
    text = {
        part: tree.find(part, within=first)[0]["text"]
        for part in ("wganbook-claim-value", "wganbook-claim-spread", "wganbook-claim-held")
    }
    assert text == {
        "wganbook-claim-value": "stored 0.00798",
        "wganbook-claim-spread": "seeds 0.00701 – 0.00798 – 0.0235",
        "wganbook-claim-held": "5/5 held",
    }
    assert tree.find("wganbook-claim-numbers", within=first)[0]["text"] == (
        "stored 0.00798 · seeds 0.00701 – 0.00798 – 0.0235 · 5/5 held"
    )
    assert tree.find("wganbook-claim-spread", within=weak)[0]["text"] == "seeds -0.52 – -0.507 – 12346"
    # a claim that did not hold in every run is marked; the others are not
    assert "wganbook-claim-weak" in weak["classes"] and "wganbook-claim-weak" not in first["classes"]
    assert tree.find("wganbook-claim-held", within=weak)[0]["text"] == "4/5 held"
    assert "2 of 3 asserted claims hold for all 5 seeds" in page


def test_statements_sections_and_sources_are_escaped():
    page, tree = _page()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; n = 1000" in page
    first = tree.find("wganbook-claim")[0]
    assert tree.find("wganbook-claim-statement", within=first)[0]["text"] == (
        "W1 exceeds |theta| by < 0.05 & n = 1000 <script>"
    )
    (where,) = tree.find("wganbook-claim-where", within=first)
    assert where["tag"] == "a" and where["text"] == "Checking <the> closed forms"
    assert where["attrs"]["href"] == "01_distances.html#check-ch1-sample-w1-excess-small"
    # a claim no chapter records has no link, only a dash
    weak = tree.find("wganbook-claim")[1]
    assert tree.find("wganbook-claim-where", within=weak)[0]["text"] == "–"
    assert "a claim | with a pipe" in page  # no table: a pipe needs no escaping


def test_reported_numbers_are_cards_with_their_anchor_and_the_papers_value():
    page, tree = _page()
    reports = tree.find("wganbook-report")
    assert [r["attrs"]["id"] for r in reports] == ["report-ch1-spread", "report-ch2-fd"]
    assert all(r["parent"] is not None and "wganbook-reports" in r["parent"]["classes"] for r in reports)
    assert not any(tree.inside(r, lst) for r in reports for lst in tree.find("wganbook-claims"))
    # the appendix's earlier anchor of a reported number still leads to it
    assert all(
        tree.inside(next(e for e in tree.elements if e["attrs"].get("id") == i), r)
        for i, r in zip(["claim-ch1-spread", "claim-ch2-fd"], reports)
    )
    spread, fd = reports
    assert tree.find("wganbook-report-paper", within=spread) == []
    assert tree.find("wganbook-report-paper", within=fd)[0]["text"] == "paper 18.4"
    assert tree.find("wganbook-claim-spread", within=fd)[0]["text"] == "seeds 9.59 – 12.7 – 14.5"
    assert tree.find("wganbook-claim-where", within=fd)[0]["attrs"]["href"] == "02_duality.html#report-ch2-fd"
    assert tree.find("wganbook-claim-source", within=fd)[0]["text"] == "WGAN-div (Wu et al. 2018)"
    assert page.count("Reported, not asserted:") == 2


def _cards(block):
    tree = _Tree()
    tree.feed(block)
    return tree.find("wganbook-claim") + tree.find("wganbook-report")


def test_the_page_is_markdown_with_headings_and_one_html_block_per_list():
    page, _ = _page()
    tokens = MarkdownIt("commonmark").parse(page)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["Claims", "Chapter 1: distances", "Chapter 2: duality"]
    blocks = [t.content for t in tokens if t.type == "html_block"]
    # each chapter's claims and reported numbers: one raw HTML block each, opened and closed in it
    assert len(blocks) == 4
    for block in blocks:
        tree = _Tree()
        tree.feed(block)
        assert not tree.errors and not tree.stack, block[:200]
    assert [b.split(">", 1)[0] for b in blocks] == ['<div class="wganbook-claims"', '<div class="wganbook-reports"'] * 2
    assert [len(_cards(b)) for b in blocks] == [2, 1, 1, 1]
    assert "wganbook-claim" not in "".join(t.content for t in tokens if t.type == "inline")


def test_section_names_keep_their_formulas_typeset():
    """A heading's ``$...$`` becomes Sphinx's inline-math markup (MathJax typesets only class ``math``),
    the text around it escaped with its spaces."""
    from wganbook.bookkit.claims import _with_math

    assert _with_math("The batch-$W_1$ paradox & $a<b$ end") == (
        'The batch-<span class="math notranslate nohighlight">\\(W_1\\)</span> paradox &amp; '
        '<span class="math notranslate nohighlight">\\(a&lt;b\\)</span> end'
    )
    assert _with_math("no formula <here>") == "no formula &lt;here&gt;"
