"""`make screenshots`: what a person sees in the MLflow and Prefect UIs, as PNGs, checked.

    python -m flows.screenshots [--out screenshots]

Starts `mlflow ui` over the project's store (or MLFLOW_TRACKING_URI's database) and a
Prefect server (`flows.server.prefect_server`) over the project's Prefect database
(.prefect/), each on a free port on 127.0.0.1, waits for their health checks, and has
headless Chromium render six pages: the experiment's runs, the latest training run, the
registered models, the champion version, Prefect's flow runs and the latest flow run. Each
page is saved as `<out>/<name>.png` and its rendered text is checked for what must be on it
(the run's name, the `champion` alias, the flow run's steps); a page without it fails the
command in one line. Both servers are stopped at the end, also on failure. Run `make run`
first: the pages show its record.
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flows.publish import MODEL_TRAINING, run_link
from flows.server import prefect_server
from tasks.config import Params, load_params
from tasks.runtime import UserError, free_ports, run_entry, server_process
from tasks.tracking import tracking_uri

log = logging.getLogger(__name__)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = "1500,950"
RENDER_BUDGET_MS = 20_000  # Chromium's virtual time for a single-page app to fetch and draw


@dataclass(frozen=True)
class Page:
    name: str
    url: str
    expected: tuple[str, ...]  # text the rendered page must contain


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise UserError(
        "no headless browser found (chromium): install it (apt-get install -y chromium), "
        "or run make screenshots, which does"
    )


def render(chromium: str, page: Page, out: Path) -> str:
    """Save the page as out/<name>.png; return its rendered text."""
    common = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={WINDOW}",
        f"--virtual-time-budget={RENDER_BUDGET_MS}",
    ]
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        profile_flag = f"--user-data-dir={profile}"
        png = out / f"{page.name}.png"
        subprocess.run(
            [*common, profile_flag, f"--screenshot={png}", page.url],
            capture_output=True,
            timeout=120,
            check=False,
        )
        dom = subprocess.run(
            [*common, profile_flag, "--dump-dom", page.url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        ).stdout
    if not png.exists():
        raise UserError(f"{page.name}: Chromium wrote no screenshot of {page.url}")
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def check(page: Page, text: str) -> None:
    missing = [want for want in page.expected if want not in text]
    if missing:
        raise UserError(f"{page.name}: {page.url} does not show {missing}")


def mlflow_pages(params: Params, store: str, base: str) -> list[Page]:
    """The experiment, its champion's training run, the models list and the champion version."""
    from mlflow import MlflowClient

    client = MlflowClient(store, registry_uri=store)
    experiment = client.get_experiment_by_name(params.mlflow.experiment)
    name = params.register_.model_name
    if experiment is None:
        raise UserError(f"no experiment {params.mlflow.experiment!r} in {store}: make run")
    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except Exception:  # noqa: BLE001 - MLflow's not-found error, named in one line
        raise UserError(f"no {name}@champion in {store}: make run") from None
    run = client.get_run(str(champion.run_id))
    run_name = str(run.info.run_name)
    runs = f"{base}/#/experiments/{experiment.experiment_id}/runs"
    return [
        Page("mlflow-experiment", f"{runs}?{MODEL_TRAINING}", (params.mlflow.experiment, run_name)),
        Page(
            "mlflow-run",
            run_link(base, experiment.experiment_id, run.info.run_id),
            (run_name, "test_accuracy"),
        ),
        Page("mlflow-models", f"{base}/#/models", (name, "champion")),
        Page(
            "mlflow-champion",
            f"{base}/#/models/{name}/versions/{champion.version}",
            (f"Version {champion.version}", "champion"),
        ),
    ]


def prefect_pages(base: str) -> list[Page]:
    """Prefect's flow runs list and the latest retrain flow run."""
    import httpx

    runs = httpx.post(
        f"{base}/api/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 1}, timeout=10
    ).json()
    if not runs:
        home = os.environ["PREFECT_HOME"]
        raise UserError(f"no flow run in the Prefect database ({home}): make run")
    latest = runs[0]
    return [
        Page("prefect-runs", f"{base}/runs", (latest["name"],)),
        Page(
            "prefect-flow-run",
            f"{base}/runs/flow-run/{latest['id']}",
            (latest["name"], "train"),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args()
    chromium = browser()
    params = load_params()
    store = tracking_uri(params.paths.mlruns)
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).exists():
        raise UserError(f"no MLflow store at {store.removeprefix('sqlite:///')}: make run first")
    os.environ.setdefault("PREFECT_HOME", str(Path.cwd() / ".prefect"))
    args.out.mkdir(parents=True, exist_ok=True)
    mlflow_port, prefect_port = free_ports(2)
    mlflow_base = f"http://127.0.0.1:{mlflow_port}"
    prefect_base = f"http://127.0.0.1:{prefect_port}"
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store]
    command += ["--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"]
    with (
        server_process(command, f"{mlflow_base}/health", "the MLflow UI did not start"),
        prefect_server("127.0.0.1", prefect_port, timeout_s=90),
    ):
        pages = mlflow_pages(params, store, mlflow_base) + prefect_pages(prefect_base)
        for page in pages:
            check(page, render(chromium, page, args.out))
            print(f"{args.out / page.name}.png  {page.url}", flush=True)
    print(f"{len(pages)} pages rendered and checked: look at {args.out}/*.png")


if __name__ == "__main__":
    run_entry("flows.screenshots")
