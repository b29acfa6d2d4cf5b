"""Repository-wide pytest configuration.

For notebooks collected by nbval (``pytest --nbval book/``): rich HTML and SVG reprs are not
compared (they embed random ids); text/plain, streams and glued values are.
"""

collect_ignore_glob = ["_build/*", "runs/*", ".venv/*"]


def pytest_collectstart(collector):
    if str(getattr(collector, "path", "")).endswith(".ipynb"):
        skip = getattr(collector, "skip_compare", None)
        if skip is not None:
            collector.skip_compare = tuple(skip) + ("text/html", "image/svg+xml", "application/javascript")
