"""The documentation site builds: `mkdocs build --strict` on mkdocs.yml, as CI runs it.

Strict mode turns every warning into a failure: a page named in the nav that does not exist, a
broken link or image, a docstring mkdocstrings cannot parse. The build takes about 2 s.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[1]


def _nav_pages(nav):
    """Every Markdown file named in mkdocs.yml's nav, however deeply nested."""
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            yield from _nav_pages(value)
        else:
            yield value


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return site_dir


def test_every_nav_page_is_built(site):
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    pages = list(_nav_pages(config["nav"]))
    assert "equations.md" in pages and "api.md" in pages
    for page in pages:
        name = page[:-3]
        built = site / ("index.html" if name == "index" else f"{name}/index.html")
        assert built.is_file(), f"{page} is in the nav but {built} was not built"


def test_api_page_holds_the_docstrings(site):
    html = (site / "api/index.html").read_text()
    for name in ("genmodels.vae.elbo", "genmodels.gan.generator_loss", "genmodels.diffusion.ddpm_loss",
                 "genmodels.rl.ppo_clip_objective", "genmodels.transfer.ewc_penalty"):
        assert f'id="{name}"' in html, f"{name} is missing from the API page"
    assert "Eq. 2.7" in html                      # a docstring's text, not only its heading


def test_family_pages_show_math_and_their_figures(site):
    for page in ("vae", "gan", "diffusion", "rl", "transfer"):
        html = (site / page / "index.html").read_text()
        assert 'class="arithmatex"' in html, f"{page}: no typeset equation"
        figures = [src for src in _img_sources(html) if "experiments/" in src]
        assert figures, f"{page}: shows no experiment figure"
        for src in figures:
            assert (site / page / src).resolve().is_file(), f"{page}: figure {src} is not in the site"


def _img_sources(html):
    return re.findall(r'<img[^>]*src="([^"]+)"', html)
