"""The evaluation's pictures where people look at them, in a real browser (Debian's chromium).

`dvc plots show` must render on a machine with no network: its default page loads vega,
vega-lite and vega-embed from a CDN and stays blank offline, so `make dvc-plots-offline` (a
prerequisite of `make install`) builds a page template with the three inlined and sets it as the
checkout's `plots.html_template`. The page is opened here with every request that is not a local
file refused. And the MLflow run page must show the PNGs the evaluate stage logged.

Both use the session's registry: the real pipeline (`dvc repro`) run on synthetic data, served by
`fraud mlflow`. Screenshots go to reports/screenshots/ for the README.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.browser import PageProblems, chromium, screenshot
from tests.integration.conftest import REPO_ROOT, clean_env, run
from tests.integration.registry_server import MODEL, RegistryServer

NAMES = ("pr_curve", "roc_curve", "confusion", "cost_vs_threshold")
# DVC names each plot's <div> after its file, with / and . replaced by _.
DIV_IDS = [f"reports_plots_{name}_csv" for name in NAMES]
UI_TIMEOUT_MS = 90_000

# The share of a chart's canvas that is not white: axes, marks and labels.
PAINTED_SHARE = """canvas => {
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i + 3] > 0 && Math.min(pixels[i], pixels[i + 1], pixels[i + 2]) < 235) painted++;
    }
    return painted / (canvas.width * canvas.height);
}"""


def offline_template(env: dict[str, str]) -> Path:
    """The page template that this checkout's DVC config names, checked to be self-contained."""
    configured = run(["dvc", "config", "plots.html_template"], REPO_ROOT, env, check=False)
    if configured.returncode != 0:
        pytest.fail(
            "this checkout sets no plots.html_template: run `make dvc-plots-offline` (part of "
            "`make install`), which builds the offline page of `dvc plots show` with npm"
        )
    path = (REPO_ROOT / ".dvc" / configured.stdout.strip()).resolve()  # DVC resolves it so
    assert path.is_file(), f"plots.html_template names {path}, which does not exist"
    page = path.read_text(encoding="utf-8")
    assert "{plot_divs}" in page, "DVC fills this placeholder with the plots"
    assert "<script src" not in page, "every script is inlined: nothing to fetch"
    return path


@pytest.fixture
def plots_repo(project: Path, registry: RegistryServer, tmp_path: Path) -> Iterator[Path]:
    """A DVC repository holding the project's dvc.yaml and the plot tables the session's real
    pipeline run wrote, configured as `make dvc-plots-offline` configures the checkout."""
    env = clean_env(tmp_path / "home")
    template = offline_template(env)
    tables = sorted((registry.repo / "reports/plots").glob("*.csv"))
    assert [table.stem for table in tables] == sorted(NAMES)
    (project / "reports/plots").mkdir(parents=True)
    for table in tables:
        shutil.copy2(table, project / "reports/plots" / table.name)
    run(["dvc", "config", "--local", "plots.html_template", str(template)], project, env)
    yield project


def open_offline(context: BrowserContext, page_file: Path) -> tuple[Page, list[str], PageProblems]:
    """Open a local page in a browser with no network: every request for anything but a local
    file is refused (and listed)."""
    refused: list[str] = []

    def local_files_only(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", local_files_only)
    problems = PageProblems()
    page = problems.watch(context.new_page())
    page.goto(page_file.as_uri(), wait_until="load")
    return page, refused, problems


def show_plots(repo: Path, out: Path, env: dict[str, str]) -> Path:
    """`dvc plots show -o out`, as a person runs it; the page it wrote, moved to a folder of
    its own (the page must not depend on where it is opened from)."""
    shown = run(["dvc", "plots", "show", "-o", str(out)], repo, env)
    assert (out / "index.html").as_uri() in shown.stdout
    moved = out.parent / f"{out.name}-moved" / "index.html"
    moved.parent.mkdir()
    shutil.move(out / "index.html", moved)
    return moved


def test_dvc_plots_page_renders_offline(plots_repo: Path, tmp_path: Path) -> None:
    page_file = show_plots(plots_repo, tmp_path / "dvc_plots", clean_env(tmp_path / "home"))

    with chromium(timeout_ms=60_000) as context:
        page, refused, problems = open_offline(context, page_file)
        for div in DIV_IDS:
            expect(page.locator(f"#{div} canvas")).to_be_visible(timeout=30_000)
        painted = {div: page.locator(f"#{div} canvas").evaluate(PAINTED_SHARE) for div in DIV_IDS}
        vega_version = page.evaluate("() => window.vega.version")
        screenshot(page, "dvc-plots", full_page=True)

    assert refused == [], "the page asked the network for something"
    assert problems.found == []
    assert all(share > 0.02 for share in painted.values()), painted
    assert vega_version.startswith("5."), "DVC's specs are vega-lite 5, which runs on vega 5"


def test_dvc_default_page_stays_blank_offline(plots_repo: Path, tmp_path: Path) -> None:
    """The control: without the template, DVC's own page fetches its libraries and draws
    nothing here. So the page above rendered because of the template, not a network."""
    env = clean_env(tmp_path / "home")
    run(["dvc", "config", "--local", "--unset", "plots.html_template"], plots_repo, env)
    page_file = show_plots(plots_repo, tmp_path / "dvc_plots", env)

    with chromium(timeout_ms=60_000) as context:
        page, refused, problems = open_offline(context, page_file)
        page.wait_for_timeout(1_000)  # what would render has had its chance
        canvases = page.locator("canvas").count()

    assert canvases == 0
    assert len(refused) >= 3 and all(url.startswith("https://") for url in refused), refused
    assert any("vegaEmbed is not defined" in problem for problem in problems.found)


def test_mlflow_run_page_shows_the_evaluation_pictures(registry: RegistryServer) -> None:
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    client = MlflowClient(tracking_uri=registry.uri)
    run_id = str(client.get_model_version(MODEL, "2").run_id)  # the session's last repro
    logged = client.get_run(run_id)
    pictures = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert pictures == {f"plots/{name}.png" for name in NAMES}
    # The same pictures as image charts, which the run's "Model metrics" tab shows.
    charts = {Path(a.path).name.split("+")[0] for a in client.list_artifacts(run_id, "images")}
    assert charts == set(NAMES)
    assert logged.data.tags.get("mlflow.loggedImages") == "True"
    downloaded = download_artifacts(
        run_id=run_id, artifact_path="plots/pr_curve.png", tracking_uri=registry.uri
    )
    written = registry.repo / "reports/plots/pr_curve.png"
    assert Path(downloaded).read_bytes() == written.read_bytes(), "the stage's own file"

    with chromium(timeout_ms=UI_TIMEOUT_MS) as context:
        page = context.new_page()
        run_page = f"{registry.uri}/#/experiments/{logged.info.experiment_id}/runs/{run_id}"
        page.goto(f"{run_page}/artifacts/plots/pr_curve.png")
        preview = page.locator('img[alt="plots/pr_curve.png"]')
        # The first load of MLflow's UI bundle on a busy 2-core machine takes a while.
        expect(preview).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.wait_for_function(
            "() => document.querySelector('img[alt=\"plots/pr_curve.png\"]').naturalWidth > 0"
        )
        width = preview.evaluate("image => image.naturalWidth")
        for name in NAMES:  # the folder's listing beside the preview
            expect(page.get_by_text(f"{name}.png", exact=True).first).to_be_visible(
                timeout=UI_TIMEOUT_MS
            )
        close_assistant = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
        if close_assistant.is_visible():  # MLflow's chat side panel covers half the page
            close_assistant.click()
        screenshot(page, "mlflow-run-plots")

    assert width == 600, "the PNG as drawn: 6 inches at 100 dpi"
