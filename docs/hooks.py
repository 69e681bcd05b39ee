"""mkdocs hooks: the experiment figures in the site, and the math typeset at build time.

**Figures.**
The figures live once, under ``experiments/<name>/…`` at the repository root, outside ``docs/``.
A page links them the way GitHub renders them, ``![…](../experiments/<name>/…/x.png)``; this hook
adds each image so linked to the site as ``experiments/<name>/…/x.png`` and drops the ``../``
from those links (the course notebooks, ``../notebooks/NN_family.ipynb``, the same way), so the same Markdown works on GitHub and in ``mkdocs build --strict`` without
copying a single file.

**Math, offline.** pymdownx.arithmatex (``generic: true``) leaves each formula as TeX in
``<span class="arithmatex">\\( … \\)</span>`` or ``<div class="arithmatex">\\[ … \\]</div>``;
:func:`on_page_content` converts it to MathML with ``latex2mathml`` while the site is built, and
browsers draw MathML themselves (MathML Core: Chromium ≥ 109, Firefox, Safari). The site loads no
script from a CDN and needs no network to show its equations; the TeX stays in the MathML's
``<annotation encoding="application/x-tex">`` for copying.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from latex2mathml.converter import convert as _tex_to_mathml

from mkdocs.structure.files import File

_FIGURE = re.compile(r"\]\(\.\./(experiments/[^)\s]+\.(?:png|jpg|jpeg|svg|gif)|"
                     r"notebooks/[^)\s/]+\.ipynb)\)")


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


_MATH = re.compile(r'<(?P<tag>span|div) class="arithmatex">\\(?P<open>[(\[])(?P<tex>.*?)\\[)\]]</(?P=tag)>',
                   re.S)


def tex_to_mathml(tex: str, display: bool) -> str:
    """One formula as a ``<math>`` element (display: a block), its TeX kept as an annotation."""
    mathml = _tex_to_mathml(tex.strip(), display="block" if display else "inline")
    annotation = f'<annotation encoding="application/x-tex">{html.escape(tex.strip())}</annotation>'
    # wrap the content in <semantics> so the TeX travels with it (MathML's own way to attach it)
    head, _, rest = mathml.partition(">")
    body = rest[: rest.rfind("</math>")]
    return f"{head}><semantics><mrow>{body}</mrow>{annotation}</semantics></math>"


def on_page_content(content, page, config, files):
    def typeset(m):
        display = m["open"] == "["
        math = tex_to_mathml(html.unescape(m["tex"]), display)
        cls = "arithmatex arithmatex-display" if display else "arithmatex"
        return f'<{m["tag"]} class="{cls}">{math}</{m["tag"]}>'
    return _MATH.sub(typeset, content)
