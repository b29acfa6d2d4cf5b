"""Small Sphinx fixes for the built book.

``sphinx-thebe`` registers its configuration script once per read phase, so pages can carry the
same inline ``const THEBE_JS_URL = ...`` twice, which is a JavaScript error in the browser
("Identifier has already been declared"). This extension drops duplicate script entries.
"""


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


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
