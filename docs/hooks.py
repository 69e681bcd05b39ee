"""mkdocs hook: put the experiment figures that the pages show into the site.

The figures live once, under ``experiments/<name>/…`` at the repository root, outside ``docs/``.
A page links them the way GitHub renders them, ``![…](../experiments/<name>/…/x.png)``; this hook
adds each image so linked to the site as ``experiments/<name>/…/x.png`` and drops the ``../``
from those links, so the same Markdown works on GitHub and in ``mkdocs build --strict`` without
copying a single file.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

_FIGURE = re.compile(r"\]\(\.\./(experiments/[^)\s]+\.(?:png|jpg|jpeg|svg|gif))\)")


def on_files(files, config):
    root = Path(config["docs_dir"]).parent      # the repository root
    for page in files.documentation_pages():
        if "/" in page.src_uri:               # the rewrite below is for top-level pages only
            continue
        for rel in _FIGURE.findall(Path(page.abs_src_path).read_text(encoding="utf-8")):
            if files.get_file_from_path(rel) is None and (root / rel).is_file():
                files.append(File.generated(config, rel, abs_src_path=str(root / rel)))
    return files


def on_page_markdown(markdown, page, config, files):
    if "/" in page.file.src_uri:
        return markdown
    return _FIGURE.sub(lambda m: f"]({m.group(1)})", markdown)
