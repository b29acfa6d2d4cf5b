"""The book's machinery: each chapter's declaration, presets, claims and the ledger, notebook helpers, the papermill runner."""
