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
    for page in ("vae", "gan", "diffusion", "rl", "transfer", "video"):
        html = (site / page / "index.html").read_text()
        assert 'class="arithmatex"' in html, f"{page}: no typeset equation"
        figures = [src for src in _img_sources(html) if "experiments/" in src]
        assert figures, f"{page}: shows no experiment figure"
        for src in figures:
            assert (site / page / src).resolve().is_file(), f"{page}: figure {src} is not in the site"


def _img_sources(html):
    return re.findall(r'<img[^>]*src="([^"]+)"', html)


_LOADED = re.compile(r'<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)="(https?:)?//[^"]*"', re.I)


def test_no_page_loads_anything_from_the_network(site):
    """Offline docs: no page loads a script, stylesheet, font or image from a server (links to
    other sites are fine: they are only followed when clicked)."""
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        found = _LOADED.findall(page.read_text(encoding="utf-8"))
        assert not found, f"{page.relative_to(site)} loads from the network: {found[:3]}"
    for css in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\(\s*['\"]?https?:", css.read_text(errors="ignore")), css


def test_math_is_typeset_at_build_time_as_mathml(site):
    for page in sorted(site.rglob("*.html")):          # no TeX left for a script to typeset
        for _, inner in re.findall(r'<(span|div) class="arithmatex[^"]*">(.*?)</\1>',
                                   page.read_text(encoding="utf-8"), re.S):
            assert inner.startswith("<math"), f"{page.relative_to(site)}: {inner[:80]}"
    html = (site / "vae" / "index.html").read_text()
    maths = re.findall(r'<(span|div) class="arithmatex[^"]*">(.*?)</\1>', html, re.S)
    assert len(maths) >= 20
    for _, inner in maths:
        assert inner.startswith("<math") and "\\(" not in inner and "\\[" not in inner, inner[:80]
    assert 'display="block"' in html and "<mfrac>" in html
    assert 'encoding="application/x-tex"' in html        # the TeX kept for copying


_PROBE = """<script>
window.addEventListener('load', () => {
  const f = document.querySelector('div.arithmatex mfrac');
  const [num, den] = [f.children[0].getBoundingClientRect(), f.children[1].getBoundingClientRect()];
  const m = document.querySelector('div.arithmatex math').getBoundingClientRect();
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({stacked: den.top >= num.bottom - 1, math_w: m.width,
                                    math_h: m.height, num_top: num.top, den_top: den.top});
  document.body.appendChild(out);
});
</script>"""


def _chromium():
    import shutil
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


@pytest.mark.slow
def test_an_equation_renders_in_a_headless_browser(site, tmp_path):
    """The VAE page in headless Chromium, offline: a display fraction's numerator sits above its
    denominator (MathML laid out as math, not as a run of text), and a screenshot is taken."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium (Debian: apt-get install chromium)")
    page = site / "vae" / "index.html"
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--window-size=1100,1500"]
    dom = subprocess.run([browser, *flags, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, "the probe did not run"
    import html as html_lib
    import json
    probe_out = json.loads(html_lib.unescape(m.group(1)))
    assert probe_out["stacked"] and probe_out["math_h"] > 20 and probe_out["math_w"] > 50, probe_out
    shot = tmp_path / "vae.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", page.as_uri() + "#the-equations"],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
