"""Small Sphinx fixes for the built book.

* ``sphinx-thebe`` registers its configuration script once per read phase, so pages can carry the
  same inline ``const THEBE_JS_URL = ...`` twice, which is a JavaScript error in the browser
  ("Identifier has already been declared"). This extension drops duplicate script entries.
* Bibliography style ``wganbook`` (pybtex): entries sorted by author and year, labelled
  "Author et al., 2019a" like the author-year citations in the text, with the arXiv id (``eprint``)
  and ``url`` as links; works of the same authors and year get letters (2019a, 2019b), which the
  reference style ``wganbook_author_year`` also shows in the text citations.
* ``static/book_fixes.css``: display equations, tables and code blocks scroll sideways instead of
  being cut off; ``static/book_fixes.js``: the sidebar and "Contents" buttons of
  sphinx-book-theme 1.3.0 work again with pydata-sphinx-theme 0.17 (both themes bind the first
  ``.primary-toggle``, a hidden button of PST 0.17's top navbar, pydata-sphinx-theme#2451 /
  sphinx-book-theme#988), PST's extra top navbar (a second search field) is hidden, and the
  punctuation after an inline formula stays on the formula's line; figures open full size on a tap
  (an overlay, ``.wganbook-lightbox``); the search page loads MathJax and typesets the formulas of
  its result snippets instead of showing their TeX source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


# ---------------------------------------------------------------------------------------------
# duplicate scripts
# ---------------------------------------------------------------------------------------------
def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # the same inline script can be registered with filename None and with filename ''
        key = (str(getattr(js, "filename", js) or ""), repr(sorted(getattr(js, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    context["script_files"] = unique


# ---------------------------------------------------------------------------------------------
# bibliography: author-year labels, links
# ---------------------------------------------------------------------------------------------
def _plain(text) -> str:
    """LaTeX (accents, braces) of a bib field or name part as plain text."""
    from pybtex.richtext import Text

    return Text.from_latex(str(text)).render_as("text")


def _authors(entry) -> str:
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    last = [_plain(" ".join(p.prelast_names + p.last_names)) for p in persons]
    if not last:
        return _plain(entry.fields.get("title", entry.key))
    if len(last) == 1:
        return last[0]
    if len(last) == 2:
        return f"{last[0]} and {last[1]}"
    return f"{last[0]} et al."


def author_year_labels(entries):
    """Labels "Author, 2019", "A and B, 2019", "A et al., 2019"; equal ones get a, b, ... in order."""
    base = [f"{_authors(e)}, {e.fields.get('year', 'n.d.')}" for e in entries]
    counts = {}
    for b in base:
        counts[b] = counts.get(b, 0) + 1
    seen = {}
    out = []
    for b in base:
        if counts[b] > 1:
            seen[b] = seen.get(b, 0) + 1
            out.append(b + "abcdefghijklmnopqrstuvwxyz"[seen[b] - 1])
        else:
            out.append(b)
    return out


def _register_bibliography_styles() -> None:
    import pybtex.plugin
    from pybtex.richtext import Text
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle
    from pybtex.style.template import field, href, join, node
    from sphinxcontrib.bibtex.plugin import register_plugin
    from sphinxcontrib.bibtex.style.referencing import GroupReferenceStyle
    from sphinxcontrib.bibtex.style.referencing import author_year as ay
    from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
        BasicAuthorYearParentheticalReferenceStyle,
        BasicAuthorYearTextualReferenceStyle,
    )
    from sphinxcontrib.bibtex.style.referencing.extra_year import ExtraYearReferenceStyle
    from sphinxcontrib.bibtex.style.template import join as sjoin
    from sphinxcontrib.bibtex.style.template import join2, post_text, pre_text, reference

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            yield from author_year_labels(list(sorted_entries))

    class WganbookStyle(UnsrtStyle):
        default_label_style = "wganbook_author_year"
        default_sorting_style = "author_year_title"

        def format_url(self, e):
            url = field("url", raw=True)
            return href(url)[url]

        def format_eprint(self, e):
            url = join["https://arxiv.org/abs/", field("eprint", raw=True)]
            return href(url)[join["arXiv:", field("eprint", raw=True)]]

    @node
    def label_year(children, data):
        """The year of an entry's label, letter included ("2019a")."""
        assert not children
        label = data["formatted_entry"].label
        m = re.search(r"(\d{4}[a-z]?|n\.d\.[a-z]?)$", label)
        return Text(m.group(1) if m else data["entry"].fields.get("year", "n.d."))

    @dataclass
    class Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
        def inner(self, role_name):
            return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
                pre_text,
                reference[
                    sjoin(sep=self.author_year_sep)[
                        self.person.author_or_editor_or_title(full="s" in role_name), label_year
                    ]
                ],
                post_text,
            ]

    @dataclass
    class Textual(BasicAuthorYearTextualReferenceStyle):
        def inner(self, role_name):
            return sjoin(sep=self.text_reference_sep)[
                self.person.author_or_editor_or_title(full="s" in role_name),
                sjoin[
                    self.bracket.left,
                    join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[pre_text, reference[label_year], post_text],
                    self.bracket.right,
                ],
            ]

    @dataclass
    class Year(ExtraYearReferenceStyle):
        def inner(self, role_name):
            return reference[label_year]

    @dataclass
    class WganbookAuthorYear(ay.AuthorYearReferenceStyle):
        def __post_init__(self):
            super().__post_init__()
            swap = {
                BasicAuthorYearParentheticalReferenceStyle: Parenthetical,
                BasicAuthorYearTextualReferenceStyle: Textual,
                ExtraYearReferenceStyle: Year,
            }
            for i, s in enumerate(self.styles):
                new = swap.get(type(s))
                if new is not None:
                    self.styles[i] = new(**{k: getattr(s, k) for k in s.__dataclass_fields__})
            self.role_style.clear()
            GroupReferenceStyle.__post_init__(self)  # the role -> style map, from the new styles

    pybtex.plugin.register_plugin("pybtex.style.labels", "wganbook_author_year", AuthorYearLabels, force=True)
    pybtex.plugin.register_plugin("pybtex.style.formatting", "wganbook", WganbookStyle, force=True)
    register_plugin("sphinxcontrib.bibtex.style.referencing", "wganbook_author_year", WganbookAuthorYear, force=True)


# ---------------------------------------------------------------------------------------------
# CSS and JavaScript
# ---------------------------------------------------------------------------------------------
def _add_static(app):
    if str(STATIC) not in [str(p) for p in app.config.html_static_path]:
        app.config.html_static_path.append(str(STATIC))


#: Pages whose formulas Sphinx does not see: the search page (book_fixes.js typesets the formulas of its result
#: snippets) and the Claims appendix (its entries are raw HTML; the section names they link to keep their
#: formulas as Sphinx's inline-math markup, wganbook.bookkit.claims).
_MATHJAX_PAGES = ("search", "book/claims")


def _mathjax_on_search_page(app, pagename, templatename, context, doctree):
    """The search page and the Claims appendix load MathJax with the book's configuration, as a page with
    equations does (Sphinx adds it only to pages with math nodes)."""
    if pagename not in _MATHJAX_PAGES or app.builder.format != "html":
        return
    if getattr(app.builder, "math_renderer_name", None) != "mathjax":
        return
    from sphinx.ext import mathjax

    policy = app.registry.html_assets_policy
    app.registry.html_assets_policy = "always"
    try:
        mathjax.install_mathjax(app, pagename, templatename, context, doctree)
    finally:
        app.registry.html_assets_policy = policy


def setup(app):
    _register_bibliography_styles()
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _mathjax_on_search_page)
    app.connect("builder-inited", _add_static)
    app.add_css_file("book_fixes.css")
    app.add_css_file("claims.css")  # the Claims appendix (wganbook.bookkit.claims.render_page)
    app.add_js_file("book_fixes.js")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
