# The two commands: `make run` (install, then retrain once) and `make test`.
SHELL := /bin/bash
export UV_PYTHON ?= 3.11
export PATH := $(CURDIR)/.venv/bin:$(HOME)/.local/bin:$(PATH)
# quiet, offline-friendly defaults for TensorFlow, MLflow, DVC and Prefect
export TF_CPP_MIN_LOG_LEVEL ?= 3
export MLFLOW_DISABLE_TELEMETRY ?= true
export MLFLOW_LOGGING_LEVEL ?= WARNING
export DO_NOT_TRACK ?= 1
export DVC_NO_ANALYTICS ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 60
export PREFECT_LOGGING_EXTRA_LOGGERS ?= tasks,flows
export PREFECT_HOME ?= $(CURDIR)/.prefect
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
export KERAS_HOME ?= $(CURDIR)/.cache/keras

UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
STORE := sqlite:///$(CURDIR)/mlruns/mlflow.db
HOST ?= 127.0.0.1
PORT ?= 5000
# make serve's port: not PORT, so that the UI and the served model can be up at once
SERVE_PORT ?= 5001
# make prefect-ui's port (the Prefect UI over .prefect/, where every run's record stays)
PREFECT_PORT ?= 4200

# make tracking-server's database and artifact store
TRACKING_DIR ?= $(CURDIR)/mlruns/server

.PHONY: install run test lint ui serve schedule repro reproduce clean-outputs tracking-server deploy prefect-ui plots screenshots

.venv/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || test -x $(UV) || PIP_ROOT_USER_ACTION=ignore python3 -m pip install --user --quiet uv 2> >(grep -v 'is ignored' >&2)
	@# bytecode compiled once here (~30 s): where PYTHONDONTWRITEBYTECODE is set, every
	@# process would otherwise compile TensorFlow & co. from source (TF import 8.8 s -> 3.1 s)
	$(UV) sync --quiet --frozen --extra dask --compile-bytecode
	@# empty Prefect and MLflow databases, migrated once here (Prefect's block types registered
	@# too), copied into a new checkout
	@.venv/bin/python -c "from tasks.databases import build_all; build_all()"
	@touch $@

install: .venv/.installed

run: install  ## install everything, then run the retraining flow once (FORCE=1: retrain regardless)
	python -m flows.retrain $(if $(FORCE),--force)

# two pytest workers (pytest-xdist), a test file each at a time: most of a test's time is
# a subprocess importing TensorFlow or a server starting, which leaves the other core idle
test: install  ## the whole test suite (slow end-to-end tests included), on 2 workers; its slowest 20 tests listed
	python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=20

lint: install
	ruff check . && ruff format --check . && mypy

repro: install  ## the same steps through DVC, stage by stage, no Prefect server; and the MLflow record
	python -m flows.repro

ui: install  ## the MLflow UI over the project's store
	@python -m flows.server --check-port $(PORT) --host $(HOST)
	mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-$(STORE)} --host $(HOST) --port $(PORT) --workers 1

plots: install  ## DVC's plots as one offline page: dvc_plots/index.html (no CDN)
	python -m flows.plots

prefect-ui: install  ## Prefect's UI over the project's past flow runs (.prefect/), on PREFECT_PORT
	@python -m flows.server --check-port $(PREFECT_PORT) --host $(HOST)
	PREFECT_UI_API_URL=http://$(HOST):$(PREFECT_PORT)/api prefect server start --host $(HOST) --port $(PREFECT_PORT)

tracking-server: install  ## an MLflow tracking server: SQLite in TRACKING_DIR, artifacts proxied
	@python -m flows.server --check-port $(PORT) --host $(HOST)
	@mkdir -p $(TRACKING_DIR)
	mlflow server --backend-store-uri sqlite:///$(abspath $(TRACKING_DIR))/mlflow.db \
		--artifacts-destination $(abspath $(TRACKING_DIR))/artifacts \
		--host $(HOST) --port $(PORT) --workers 1

# make screenshots installs Debian's chromium when no headless browser is there
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
BROWSER := $(firstword $(foreach b,chromium chromium-browser google-chrome,$(shell command -v $(b) 2>/dev/null)))

screenshots: install  ## PNGs of the MLflow and Prefect UIs over the last runs (headless Chromium), checked
	@$(if $(BROWSER),true,echo "installing chromium (Debian) for the screenshots" && $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null)
	python -m flows.screenshots

deploy: install  ## the retrain flow as deployment retrain/retrain on work pool POOL (PREFECT_API_URL)
	python -m flows.deploy --pool $(POOL)

serve: install  ## register.model_name@champion over HTTP (MLflow's scoring server; VERSION=3 for another)
	MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-$(STORE)} python -m tasks.serve --host $(HOST) --port $(SERVE_PORT) $(if $(VERSION),--version $(VERSION))

schedule: install  ## a Prefect server plus a deployment retraining on params.yaml's schedule.cron
	python -m flows.schedule $(if $(CRON),--cron "$(CRON)")

reproduce: install  ## rebuild a registered version from its tags: make reproduce MODEL=models:/name/3
	python -m tasks.reproduce $(MODEL)
