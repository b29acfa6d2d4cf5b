"""The book's machinery: each chapter's declaration, presets, claims and the ledger, notebook helpers, the runner.

- :mod:`wganbook.bookkit.presets` -- each chapter's presets and the one validator of its parameters
- :mod:`wganbook.bookkit.grids` -- each chapter's training runs, declared once (the grids it runs)
- :mod:`wganbook.bookkit.chapters` -- the chapters: notebooks, keys, ``grid()`` and the run plan
- :mod:`wganbook.bookkit.toc` -- the chapter notebooks of a book folder, their keys and parameters cells
- :mod:`wganbook.bookkit.claims` -- named claims and their ledger (``python -m wganbook claims``)
- :mod:`wganbook.bookkit.digest` -- a chapter's scoped digest and ``python -m wganbook stale``
- :mod:`wganbook.bookkit.notebook` -- notebook set-up and ``glue``
- :mod:`wganbook.bookkit.runner` -- the papermill runner of the whole book (``python -m wganbook book``)
"""
