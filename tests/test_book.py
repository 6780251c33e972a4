"""Build the book with warnings as errors, check that every chapter page exists, that no TeX is
left as text in its prose, that its formulas render in a browser that has no network, and that
the published build (and only it) has the repository's buttons."""

import base64
import json
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def test_every_chapter_is_a_committed_executed_notebook():
    chapters = [
        name for name in _toc_files() if not (ROOT / "book" / f"{name}.md").is_file()
    ]  # .md: prose pages
    assert len(chapters) >= 7
    for name in chapters:
        nb = json.loads((ROOT / "book" / f"{name}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
        assert code, f"{name} has no code"
        assert all(c["execution_count"] is not None for c in code), f"{name} has unexecuted cells"
    assert (ROOT / "book" / "references.md").is_file()


def test_every_numbered_chapter_ends_with_exercises_and_collapsed_solutions():
    """Each numbered chapter that is a notebook ends with an "Exercises" section of at least two
    sphinx-exercise exercises, each with exactly one solution that names its label and is collapsed
    (:class: dropdown); a gated solution (solution-start ... solution-end, around the code cells
    nbval executes) is closed before the next exercise opens."""
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    numbered = [
        c["file"] for part in toc["parts"] if part.get("numbered") for c in part["chapters"]
    ]
    checked = 0
    for name in numbered:
        path = ROOT / "book" / f"{name}.ipynb"
        if not path.is_file():  # a prose page (chapter 11): exercises optional
            continue
        cells = json.loads(path.read_text())["cells"]
        markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
        start = next(i for i, s in enumerate(markdown) if "## Exercises" in s)
        text = "\n".join(markdown[start:])
        labels = re.findall(r"```\{exercise\}[^\n]*\n:label: ([\w-]+)", text)
        assert len(labels) >= 2, f"{name}: {len(labels)} exercises"
        assert "```{exercise}" not in "\n".join(markdown[:start]), f"{name}: an exercise before"
        solutions = re.findall(r"```\{solution(?:-start)?\} ([\w-]+)\n(:class: dropdown)?", text)
        assert sorted(label for label, _ in solutions) == sorted(labels), name
        assert all(dropdown for _, dropdown in solutions), f"{name}: a solution is not collapsed"
        opened = False  # inside a gated solution
        for gate in re.findall(r"```\{(exercise|solution-start|solution-end)\}", text):
            assert opened == (gate == "solution-end"), f"{name}: {gate} where it cannot be"
            opened = gate == "solution-start"
        assert not opened, f"{name}: a solution-start without its solution-end"
        checked += 1
    assert checked >= 10


def test_every_figure_uses_the_book_style_and_is_numbered():
    """A chapter that draws calls mmim_lite.plotting.use_book_style before its first figure, and
    every figure it glues is placed with a numbered, captioned {glue:figure} with alt text."""
    total = 0
    for name in _toc_files():
        path = ROOT / "book" / f"{name}.ipynb"
        if not path.is_file():
            continue
        cells = json.loads(path.read_text())["cells"]
        sources = ["".join(c["source"]) for c in cells]
        code = [s for c, s in zip(cells, sources) if c["cell_type"] == "code"]
        draws = [i for i, s in enumerate(code) if "plt.subplots(" in s or "plt.figure(" in s]
        if draws:
            styled = [i for i, s in enumerate(code) if "use_book_style()" in s]
            assert styled and styled[0] <= draws[0], (
                f"{name}: use_book_style() must run before the first figure"
            )
        glued = set(re.findall(r'glue\("(fig_\w+)", fig', "\n".join(code)))
        placed = re.findall(
            r"```\{glue:figure\} (fig_\w+)\n:name: (fig-[\w-]+)\n:alt: \S", "\n".join(sources)
        )
        assert glued == {g for g, _ in placed}, (
            f"{name}: glued {sorted(glued)}, placed {sorted(placed)}"
        )
        n_drawn = sum(s.count("plt.subplots(") + s.count("plt.figure(") for s in code)
        assert n_drawn == len(glued), (
            f"{name}: {n_drawn} figures drawn, {len(glued)} glued and numbered"
        )
        total += len(placed)
    assert total >= 19  # the book's figures were found (the patterns above match them)


# Chapters whose figures and outputs are being made readable in a change of their own (the
# ablation and "when" chapters, 08 and 08b; the case study, 09, whose clip table and provenance
# line are 108-109 characters wide); they are checked here as soon as that change lands (remove
# them from this set then).
_READABILITY_PENDING: set[str] = set()
# Tags that fold a cell's output away on the page (hide-input leaves the output in view).
_COLLAPSED = {"hide-output", "hide-cell", "remove-output", "remove-cell"}
# Where a notebook stores a figure: shown (image/png) or glued for a {glue:figure}.
_PNG_KEYS = ("image/png", "application/papermill.record/image/png")


def _png_size(data: str) -> tuple[int, float]:
    """Width (pixels) and resolution (dots per inch) of a base64 PNG that matplotlib wrote: its IHDR
    chunk and its pHYs chunk (pixels per metre), where matplotlib stores the figure's dpi."""
    png = base64.b64decode(data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width = struct.unpack(">I", png[16:20])[0]
    at = png.find(b"pHYs")
    assert at > 0, "the PNG does not say its resolution"
    per_metre, _, unit = struct.unpack(">IIB", png[at + 4 : at + 13])
    assert unit == 1, "the PNG's resolution is not in pixels per metre"
    return width, per_metre * 0.0254


def test_figures_and_outputs_fit_the_page():
    """Every stored figure (shown or glued) is drawn at >= 150 dpi and is at most about 8 inches
    wide (8.2) (stacked panels rather than wide ones): the book's column shows about 6.8 inches, so
    the style's 11 pt labels stay above 10 pt on the page (and the PNG under 1,600 px). No output
    line outside a collapsed cell is over 100 characters, so a page never scrolls sideways."""
    for name in _toc_files():
        path = ROOT / "book" / f"{name}.ipynb"
        if not path.is_file() or name in _READABILITY_PENDING:
            continue
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] != "code":
                continue
            collapsed = bool(_COLLAPSED & set(cell.get("metadata", {}).get("tags", [])))
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                figures = [k for k in _PNG_KEYS if k in data]
                for key in figures:
                    width, dpi = _png_size("".join(data[key]))
                    where = f"{name} cell {i}: a figure {width} px wide at {dpi:.0f} dpi"
                    assert dpi >= 149.5 and width <= 1600 and width / dpi <= 8.2, where
                # the page shows a figure or a table's HTML, not their text form ("<Figure ...>")
                text = "".join(out.get("text", ""))
                text += (
                    "" if figures or "text/html" in data else "".join(data.get("text/plain", ""))
                )
                long = [line for line in text.splitlines() if len(line) > 100]
                assert collapsed or not long, f"{name} cell {i}: an output line of {len(long[0])}"


def _build_book(out: Path, *options: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Build the book with -W into out (the sources stay as they are): the run, the HTML folder."""
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(exe) if exe.exists() else shutil.which("jupyter-book"),
        "build",
        str(ROOT / "book"),
        "-W",
        "--keep-going",
        "--path-output",
        str(out),
        *options,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    return proc, out / "_build" / "html"


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    return _build_book(tmp_path_factory.mktemp("book"))


@pytest.mark.slow
def test_book_builds_without_warnings(built_book):
    proc, html_dir = built_book
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for name in _toc_files():
        assert (html_dir / f"{name}.html").is_file(), f"missing page {name}.html"


@pytest.mark.slow
def test_model_chapter_shows_the_packages_own_code(built_book):
    """The model chapter includes the package's code at build time: the encoders (Eq. 2), the
    fusion, q and L_lld (Eq. 4), the memory and the entropy (Eqs. 5-8), the CPC head (Eqs. 10-11),
    the forward pass and the losses (Eqs. 9, 12-14) and Algorithm 1's two stages. Every line of each
    object's current source is on the page, so the page cannot drift from the code."""
    import html
    import inspect

    from mmim_lite import bounds, model, train

    _, html_dir = built_book
    page = html.unescape(re.sub(r"<[^>]+>", "", (html_dir / "05_model.html").read_text()))
    shown = (
        model.SequenceEncoder,
        model.FusionNetwork,
        bounds.GaussianPredictor,
        model.MMIM.lld_loss,
        bounds.HistoryMemory,
        bounds.polarity_entropy,
        bounds.CPCHead,
        bounds.infonce_loss,
        model.MMIM.forward,
        model.MMIM.losses,
        train.Trainer.stage1_epoch,
        train.Trainer.stage2_epoch,
        train.Trainer._stage,
        train.Trainer.train_epoch,
    )
    for obj in shown:
        for line in inspect.getsource(obj).splitlines():
            assert line.strip() in page, (obj.__qualname__, line)


# TeX that a reader would see as text: a dollar sign, a command (\frac, \beta), a delimiter
# (\( \[) or a spacing/brace escape (\, \; \! \{).
_TEX = re.compile(r"\$|\\(?:[A-Za-z]+|[()\[\]{},;!])")


class _Prose(HTMLParser):
    """The text a reader sees as prose: without scripts, styles, code (pre, code) and formulas, i.e.
    the math spans and divs that Sphinx hands to MathJax, or, in a typeset page, MathJax's
    output."""

    def __init__(self, formulas: str) -> None:
        super().__init__(convert_charrefs=True)
        self.formulas, self.skipped, self.depth, self.parts = formulas, None, 0, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipped:
            self.depth += tag == self.skipped
        elif (
            tag in ("script", "style", "pre", "code")
            or tag == self.formulas
            or (
                self.formulas == "math"
                and tag in ("span", "div")
                and "math" in (dict(attrs).get("class") or "").split()
            )
        ):
            self.skipped, self.depth = tag, 1

    def handle_endtag(self, tag: str) -> None:
        if tag == self.skipped:
            self.depth -= 1
            self.skipped = self.skipped if self.depth else None

    def handle_data(self, data: str) -> None:
        if not self.skipped:
            self.parts.append(data)


def _tex_in_prose(page: str, formulas: str = "math") -> list[str]:
    """Each piece of TeX left in the page's prose, with some context. formulas: what holds the
    formulas, "math" (the built HTML's math spans and divs) or "mjx-container" (a typeset DOM)."""
    prose = _Prose(formulas)
    prose.feed(page)
    text = " ".join(" ".join(prose.parts).split())
    return [text[max(0, m.start() - 50) : m.end() + 30] for m in _TEX.finditer(text)]


@pytest.mark.slow
def test_no_tex_left_in_the_prose_of_any_page(built_book):
    """Markdown that breaks a formula (a line of it read as a list item, $$ that is not a block)
    leaves TeX as text on the page: every page's prose must hold none."""
    _, html_dir = built_book
    broken = {
        name: tex[:3]
        for name in _toc_files()
        if (tex := _tex_in_prose((html_dir / f"{name}.html").read_text(encoding="utf-8")))
    }
    assert not broken, broken
    # What the check leaves alone, and what it finds (a caption line "+ \beta..." made a list item):
    assert _tex_in_prose('<p><span class="math">\\(\\beta\\)</span> <code>x = $y</code></p>') == []
    assert len(_tex_in_prose("<li>\\beta\\,\\mathcal{L}$ (Eq. 14)</li>")) == 4


def _offline_dom(browser: str, page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, in headless Chromium with every network request
    refused."""
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network at all
        "--virtual-time-budget=20000",
        "--dump-dom",
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout


@pytest.mark.slow
def test_math_renders_without_network(built_book, tmp_path):
    """Every formula of every chapter is typeset by the MathJax served with the book (no CDN): the
    page shows one rendered MathJax element per formula, and outside them no TeX (no raw \\( or
    \\[ of a formula MathJax left alone)."""
    browser = next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if browser is None:
        pytest.skip(
            "headless Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        )
    _, html_dir = built_book
    assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file()
    checked = 0
    for name in _toc_files():
        page = html_dir / f"{name}.html"
        formulas = page.read_text().count('class="math')
        if not formulas:
            continue
        dom = _offline_dom(browser, page, tmp_path / name)
        assert dom.count("<mjx-container") == formulas, (
            name,
            dom.count("<mjx-container"),
            formulas,
        )
        tex = _tex_in_prose(dom, formulas="mjx-container")
        assert not tex, (name, tex[:3])
        checked += 1
    assert checked >= 7  # every chapter and the notation page have formulas


def test_pages_workflow_builds_the_book_and_deploys_it():
    """The publishing workflow is valid YAML: on a push to main it builds the book with -W, with the
    configuration that book/config_for_pages.py writes from the workflow's context (the repository's
    URL and branch), and hands book/_build/html to the standard upload-pages-artifact / deploy-pages
    actions."""
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert flow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    runs = " ".join(step.get("run", "") for step in build["steps"])
    assert '-e ".[dev]"' in runs
    step = next(s for s in build["steps"] if "jupyter-book build" in s.get("run", ""))
    assert step["env"]["REPOSITORY_URL"] == "${{ github.server_url }}/${{ github.repository }}"
    assert step["env"]["BRANCH"] == "${{ github.ref_name }}"
    written = re.search(
        r'config_for_pages\.py "\$REPOSITORY_URL" --branch "\$BRANCH" --output (\S+)', step["run"]
    )
    assert written and f"jupyter-book build book/ -W --config {written[1]}" in step["run"]
    upload = next(
        s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")
    )
    assert upload["with"]["path"] == "book/_build/html"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])


@pytest.mark.slow
def test_published_build_has_its_buttons_and_a_local_build_has_none(built_book, tmp_path):
    """Built with the configuration the Pages workflow writes (here for a sample repository), every
    page links to the repository and to its issues, keeps its download button, and every notebook
    page has a Binder button that opens that notebook; the local build has the download button
    only: no repository or issues button, no launch button, and no link to Jupyter Book's default
    repository URL. A bad URL is refused with a one-line error."""
    url, config = "https://github.com/sample-owner/sample-book", tmp_path / "pages.yml"
    script = [sys.executable, str(ROOT / "book" / "config_for_pages.py")]
    bad = subprocess.run(
        [*script, "github.com/sample", "--output", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0 and not config.exists()
    assert bad.stderr.strip().count("\n") == 0 and "https://HOST/OWNER/NAME" in bad.stderr
    subprocess.run([*script, url, "--branch", "main", "--output", str(config)], check=True)
    proc, published = _build_book(tmp_path / "pages", "--config", str(config))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    _, local = built_book
    for name in _toc_files():
        page, plain = ((d / f"{name}.html").read_text(encoding="utf-8") for d in (published, local))
        assert "btn-download-source-button" in page and "btn-download-source-button" in plain
        assert f'href="{url}"' in page and f'href="{url}/issues/new?' in page, name
        binder = (
            '"https://mybinder.org/v2/gh/sample-owner/sample-book/main'
            f'?urlpath=lab/tree/book/{name}.ipynb"'
        )
        assert (binder in page) == (ROOT / "book" / f"{name}.ipynb").is_file(), name
        for button in ("btn-source-repository-button", "btn-source-issues-button"):
            assert button in page and button not in plain, (name, button)
        for launch in ("dropdown-launch-buttons", "/v2/gh/", "executablebooks/jupyter-book"):
            assert launch not in plain, (name, launch)


def test_sanitizer_hides_estimates_addresses_and_whole_glued_pngs():
    """The book's nbval sanitizer, applied as nbval applies it (its rules in file order): a glued
    figure's base64 PNG becomes one token even where its text holds "0x" and six hex digits (which
    the address rule would otherwise rewrite first, leaving the PNG half-sanitized and the
    comparison flaky)."""
    from nbval.plugin import get_sanitize_patterns

    rules = get_sanitize_patterns((ROOT / "book" / "nbval_sanitize.cfg").read_text())

    def sanitize(text: str) -> str:
        for regex, replace in rules:
            text = re.sub(regex, replace, text)
        return text

    png = "iVBORw0KGgoAAAANSUhEUgAAAl4AAAGC" + "A0x1234abcdZ" * 3 + "\nAAAAElFTkSuQmCC"
    assert sanitize(png) == "<PNG image>"
    assert sanitize("BA estimate ≈-1.92 nats (true 2.0)") == "BA estimate ≈… nats (true 2.0)"
    assert sanitize("<object at 0x7f3a2b1c4d50>") == "<object at 0x…>"
