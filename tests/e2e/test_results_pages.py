"""End to end: `pivot report` and `pivot plots` pages on a project with three commits
(tests/e2e/results_project.py), checked as files and in a real headless Chromium: no console
error, no request leaving the file, images decoded, tables present, the search box filters.
Screenshots are saved under build/test-artifacts/ (PIVOT_TEST_ARTIFACTS)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.browser import ARTIFACTS, Browser
from tests.e2e.conftest import E2EProject
from tests.e2e.results_project import build


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> E2EProject:
    return build(tmp_path_factory.mktemp("pages") / "proj")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    started = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield started
    started.close()


def _check_page(browser: Browser, page: Path, screenshot: str) -> dict[str, int]:
    """Load `page` from a file:// URL; assert it is self-contained and error-free; count things."""
    load = browser.open(page.as_uri())
    assert load.errors == [], load.errors
    outside = [url for url in load.requests if not url.startswith(("file:", "data:"))]
    assert outside == [], f"the page requested {outside}: it must work with no network"
    counts = browser.evaluate(
        """({
          images: document.images.length,
          decoded: Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length,
          tables: document.querySelectorAll('table').length,
          rows: document.querySelectorAll('tbody tr').length,
          charts: document.querySelectorAll('.plot svg').length,
          sections: document.querySelectorAll('details.section').length,
        })"""
    )
    browser.screenshot(ARTIFACTS / screenshot)
    return dict(counts)


def test_report_page_in_a_real_browser(history: E2EProject, browser: Browser) -> None:
    result = history.pivot("report")
    page = history.root / ".pivot" / "report" / "report.html"
    assert f"Wrote {page}" in result.stdout
    counts = _check_page(browser, page, "report.png")
    assert counts["images"] == 2 and counts["decoded"] == 2  # loss.png at HEAD and workspace
    assert counts["tables"] >= 4 and counts["charts"] == 1 and counts["sections"] == 7
    # the DAG: one node per stage, coloured by the last run (audit failed, train ran)
    fills = browser.evaluate(
        "Object.fromEntries(Array.from(document.querySelectorAll('#dag g.node')).map("
        "g => [g.querySelector('text').textContent, g.querySelector('rect').getAttribute('fill')]))"
    )
    assert fills == {"prepare": "#adb5bd", "train": "#2f9e44", "audit": "#e03131"}
    # the search box hides rows that do not match, and every section opens
    browser.evaluate(
        "(() => { document.querySelectorAll('details.section').forEach(d => d.open = false);"
        " const box = document.getElementById('search'); box.value = 'accuracy';"
        " box.dispatchEvent(new Event('input')); })()"
    )
    shown = browser.evaluate(
        "Array.from(document.querySelectorAll('#metrics tbody tr')).filter("
        "r => !r.classList.contains('hidden')).map(r => r.cells[1].textContent)"
    )
    assert shown == ["scores.accuracy"]
    assert browser.evaluate(
        "Array.from(document.querySelectorAll('details.section')).every(d => d.open)"
    )


def test_report_content(history: E2EProject) -> None:
    history.pivot("report", "-o", "out/pr.html", "--rev", "HEAD~2")
    text = (history.root / "out" / "pr.html").read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text and "http://" not in text
    assert "HEAD~2 (" in text  # the baseline named in the header and the columns
    assert "params changed: lr" in text  # why train ran
    assert "ValueError: accuracy 0.9375 is below 0.99" in text  # the failure's traceback
    assert re.search(r"<code>lr</code></td><td[^>]*>0.1</td><td[^>]*>0.3</td>", text)
    facts = history.pivot("report", "--rev", "HEAD~2", "--json").json
    metrics = {m["key"]: m for m in facts["metrics"]}
    assert metrics["loss"]["baselines"] == [0.25] and metrics["loss"]["current"] == 0.0625
    assert metrics["loss"]["change"] == pytest.approx(-0.1875)
    assert metrics["loss"]["best"] == 0.0625 and metrics["loss"]["best_at"] == "workspace"
    # higher is better for accuracy; the best is found among the commits too
    assert metrics["scores.accuracy"]["best"] == 0.9375
    assert [f["stage"] for f in facts["failures"]] == ["audit"]
    stages = {s["stage"]: s for s in facts["stages"]}
    assert stages["train"]["why"] == ["params changed: lr"] and stages["audit"]["stale"]
    outputs = {o["path"]: o["state"] for o in facts["outputs"]}
    assert outputs["data/clean.csv"] == "unchanged" and outputs["plots/loss.csv"] == "changed"
    assert facts["page"].endswith(".pivot/report/report.html")
    # -o is relative to where the command runs, also below the project root
    (history.root / "docs").mkdir(exist_ok=True)
    history.pivot("report", "-o", "r.html", cwd=history.root / "docs")
    assert (history.root / "docs" / "r.html").is_file()


def test_plots_diff_page_in_a_real_browser(history: E2EProject, browser: Browser) -> None:
    result = history.pivot("plots", "diff", "HEAD~2", "HEAD", "workspace", "--json").json
    page = Path(result["page"])
    assert page == history.root / ".pivot" / "report" / "plots.html"
    kinds = {p["path"]: p["kind"] for p in result["plots"]}
    assert kinds == {"plots/loss.csv": "data", "plots/loss.png": "image"}
    assert [r["rev"] for r in result["plots"][0]["revisions"]] == ["HEAD~2", "HEAD", "workspace"]
    counts = _check_page(browser, page, "plots-diff.png")
    assert counts["images"] == 3 and counts["decoded"] == 3  # side by side, one per revision
    assert counts["charts"] == 1  # the data plot: one chart overlaying the three revisions
    legend = browser.evaluate("document.querySelector('.plot svg').textContent")
    assert "HEAD~2 (" in legend and "workspace" in legend


def test_plots_show_and_targets(history: E2EProject) -> None:
    out = history.root / "p.html"
    history.pivot("plots", "show", "plots/loss.csv", "-o", str(out))
    text = out.read_text(encoding="utf-8")
    assert "plots/loss.csv" in text and "<polyline" in text and "data:image/png" not in text
    missing = history.pivot("plots", "show", "nope", expect=2)
    assert "'nope' is neither a stage with a Plot output nor a plot file" in missing.stderr


def test_a_plot_missing_from_git_is_read_from_the_cache(
    history: E2EProject, tmp_path: Path
) -> None:
    """At a commit where the plot file is not tracked, its lock's hash finds it in the cache."""
    import shutil

    from tests.e2e.conftest import git

    clone = tmp_path / "clone"
    shutil.copytree(history.root, clone, symlinks=True)
    # cached outputs are git-ignored (a Plot is cached), so git may never have tracked it
    git(clone, "rm", "-q", "--cached", "--ignore-unmatch", "plots/loss.png")
    git(clone, "commit", "-q", "--allow-empty", "-m", "stop tracking the plot")
    (clone / "plots" / "loss.png").unlink()
    facts = E2EProject(clone).pivot("plots", "diff", "HEAD", "HEAD~1", "--json").json
    image = next(p for p in facts["plots"] if p["path"] == "plots/loss.png")
    assert [r["present"] for r in image["revisions"]] == [True, True]
