"""Typed view of params.yaml: the one source of configuration.

Every section is a frozen pydantic model; unknown keys and bad values stop the run
with one line that names the key and what was expected.
"""

from __future__ import annotations

import codecs
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tasks.objectives import GATE_METRICS, SCORES, tune_metrics, with_task_defaults
from tasks.runtime import UserError

PARAMS_FILE = Path("params.yaml")


class ParamsError(UserError):
    """A params.yaml problem, phrased as one line for the user."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(Section):
    source: Path = Path("data/source")
    raw: Path = Path("data/raw")
    clean: Path = Path("data/clean")
    split: Path = Path("data/split")
    processed: Path = Path("data/processed")
    preprocessor: Path = Path("models/preprocessor.skops")
    model: Path = Path("models/model")
    reports: Path = Path("reports")
    expectations: Path = Path("expectations")
    rejected: Path = Path("data/rejected")  # the last batch that failed validation, and why
    mlruns: Path = Path("mlruns")
    checkpoints: Path = Path("models/.checkpoints")


class DatasetParams(Section):
    label: str = "label"
    task: Literal["classification", "regression"] = "classification"


# cells that mean "no value" (after stripping spaces): pandas' own markers and "?"
NA_VALUES = ["", "?", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>"]


class CsvParams(Section):
    """How a CSV file is read; `auto` is sniffed from the file's first 64 KiB."""

    delimiter: str = "auto"  # auto | one character: , ; | "\t"
    encoding: str = "auto"  # auto: the byte-order mark's, else utf-8, else cp1252
    header: Literal["first_row", "none"] = "first_row"
    columns: list[str] | None = None  # the names (header: none), or new names for the header's
    na_values: list[str] = NA_VALUES  # an empty cell is always missing
    strip_whitespace: bool = True  # " yes " -> "yes" in text cells and column names

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if value != "auto" and len(value) != 1:
            raise ValueError("must be 'auto' or one character, e.g. ',' ';' '|' or \"\\t\"")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            if value != "auto":
                codecs.lookup(value)
        except LookupError:
            raise ValueError("is not an encoding Python knows (e.g. utf-8, cp1252)") from None
        return value

    @model_validator(mode="after")
    def _names_for_headerless(self) -> CsvParams:
        if self.header == "none" and not self.columns:
            raise ValueError("ingest.csv.header 'none' needs ingest.csv.columns: [names, ...]")
        if self.columns and len(set(self.columns)) != len(self.columns):
            raise ValueError(f"ingest.csv.columns repeats a name: {self.columns}")
        return self


class IngestParams(Section):
    source: Literal["sklearn", "csv", "parquet", "idx", "npz"] = "sklearn"
    name: str = "digits"
    path: Path | None = None
    max_rows: int | None = Field(default=None, gt=0)
    drop_columns: list[str] = []
    csv: CsvParams = CsvParams()

    @model_validator(mode="after")
    def _path_for_files(self) -> IngestParams:
        if self.source != "sklearn" and self.path is None:
            raise ValueError(f"ingest.path is required when ingest.source is {self.source!r}")
        return self


class ValidateParams(Section):
    min_rows: int = Field(default=10, ge=1)
    min_rows_per_class: int = Field(default=2, ge=1)
    columns: list[str] | None = None
    labels: list[int | str] | None = None
    value_range: tuple[float, float] | None = None
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    suite: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")


Missing = Literal["drop", "mean", "median", "most_frequent", "constant"]


class OutlierRule(Section):
    """How one column's outliers are found (fixed range, IQR fences, z-score) and handled."""

    method: Literal["range", "iqr", "zscore"]
    low: float | None = None
    high: float | None = None
    k: float = Field(default=1.5, gt=0)
    threshold: float = Field(default=3.0, gt=0)
    action: Literal["drop", "clip"] = "drop"

    @model_validator(mode="after")
    def _range_has_bounds(self) -> OutlierRule:
        if self.method == "range" and self.low is None and self.high is None:
            raise ValueError("an outlier rule with method 'range' needs low and/or high")
        return self


class CleanParams(Section):
    drop_duplicates: bool = True
    missing: Missing = "drop"
    missing_by_column: dict[str, Missing] = {}
    fill_value: float | str = 0
    coerce_numbers: bool = True
    outliers: dict[str, OutlierRule] = {}

    def missing_for(self, column: str) -> str:
        """The missing-value strategy of one column (its own, or the default)."""
        return self.missing_by_column.get(column, self.missing)


class SplitParams(Section):
    train: float = Field(default=0.7, gt=0, lt=1)
    val: float = Field(default=0.1, gt=0, lt=1)
    test: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 42
    key: str | None = None  # a column (table) or NPZ array naming each row; else a content hash

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitParams:
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"split.train + split.val + split.test must sum to 1, got {total:g}")
        return self


class StandardizeParams(Section):
    scaler: Literal["standard", "minmax", "none"] = "standard"
    categorical: Literal["onehot", "ordinal"] = "onehot"


class ModelParams(Section):
    type: Literal["dense", "cnn", "lstm", "sklearn_mlp"] = "cnn"  # sklearn_mlp: scikit-learn
    hidden_units: list[int] = [64]
    conv_filters: list[int] = [32, 64]
    kernel_size: int = Field(default=3, ge=1)
    lstm_units: list[int] = [32]
    activation: Literal["relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish"] = "relu"
    initializer: Literal[
        "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal"
    ] = "he_normal"
    dropout: float = Field(default=0.25, ge=0, lt=1)
    l1: float = Field(default=0.0, ge=0)
    l2: float = Field(default=0.0, ge=0)


class EarlyStopping(Section):
    monitor: str = "val_loss"
    patience: int = Field(default=5, ge=0)
    restore_best_weights: bool = True


class Augmentation(Section):
    """Random image transforms applied to training batches only (0 turns one off)."""

    rotation: float = Field(default=0.0, ge=0, le=1)  # fraction of a full turn, either way
    translation: float = Field(default=0.0, ge=0, lt=1)  # fraction of height and width
    zoom: float = Field(default=0.0, ge=0, lt=1)  # fraction in or out

    @property
    def active(self) -> bool:
        return self.rotation > 0 or self.translation > 0 or self.zoom > 0


class TrainParams(Section):
    optimizer: Literal["adam", "sgd", "rmsprop", "adagrad", "adadelta"] = "adam"
    learning_rate: float = Field(default=1e-3, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    lr_decay: Literal["none", "exponential", "plateau"] = "none"
    batch_size: int = Field(default=32, ge=1)
    epochs: int = Field(default=30, ge=1)
    early_stopping: EarlyStopping = EarlyStopping()
    seed: int = 42
    augmentation: Augmentation = Augmentation()
    deterministic: bool = False
    mixed_precision: bool = False
    cpu_replicas: int = Field(default=1, ge=1)  # >1 without a GPU: MirroredStrategy on CPU parts


class TuneParams(Section):
    epochs: int = Field(default=10, ge=1)
    metric: str = "val_accuracy"
    grid: dict[str, list[Any]] = {}
    runner: Literal["sequential", "threads", "processes", "dask"] = "sequential"
    workers: int = Field(default=2, ge=1)
    dask_address: str | None = None  # an existing Dask scheduler; a local cluster when unset
    pruning: Literal["none", "halving"] = "none"
    eta: int = Field(default=2, ge=2)  # halving keeps the best 1/eta of the trials per rung

    @model_validator(mode="after")
    def _grid_axes_known(self) -> TuneParams:
        for axis, values in self.grid.items():
            section, _, key = axis.partition(".")
            sections: dict[str, type[Section]] = {"model": ModelParams, "train": TrainParams}
            fields = sections[section].model_fields if section in sections else {}
            if key not in fields:
                raise ValueError(f"tune.grid axis {axis!r} must name a model.* or train.* key")
            if not values:
                raise ValueError(f"tune.grid axis {axis!r} needs at least one value")
        return self


class EvaluateParams(Section):
    average: Literal["macro", "weighted", "micro"] = "macro"


class GateParams(Section):
    """How a challenger must beat the champion on the same rows to be promoted."""

    test: Literal["auto", "mcnemar", "bootstrap"] = "auto"  # auto: mcnemar for accuracy
    alpha: float = Field(default=0.05, gt=0, lt=1)  # one-sided significance level
    min_improvement: float = Field(default=0.0, ge=0)  # the gain that matters, in metric units
    resamples: int = Field(default=2000, ge=100)  # bootstrap and permutation draws
    seed: int = 0


class RegisterParams(Section):
    model_name: str = "retrain-model"
    metric: str = "accuracy"
    thresholds: dict[str, float] = {}
    gate: GateParams = GateParams()

    @model_validator(mode="after")
    def _mcnemar_needs_accuracy(self) -> RegisterParams:
        """Only an explicit `mcnemar` is refused: `auto` picks bootstrap for other metrics."""
        if self.gate.test == "mcnemar" and self.metric != "accuracy":
            raise ValueError(
                f"register.gate.test 'mcnemar' compares right/wrong rows, so it needs "
                f"register.metric accuracy, not {self.metric!r}; use 'bootstrap'"
            )
        return self


class MlflowParams(Section):
    experiment: str = "retrain"


class PredictParams(Section):
    id_column: str | None = None  # carried from the input to the predictions; else row numbers


class DriftParams(Section):
    """When a change in the data, or its growth, justifies retraining."""

    alpha: float = Field(default=0.01, gt=0, lt=1)  # a feature's test must reach this p-value
    psi: float = Field(default=0.2, gt=0)  # ... and its population stability index this size
    min_new_rows: float = Field(default=0.1, ge=0)  # growth (fraction of rows) that alone retrains
    max_features: int = Field(default=50, gt=0)  # the report keeps the most drifted this many


class ScheduleParams(Section):
    cron: str = "0 3 * * *"
    name: str = "nightly-retrain"


class NotifyParams(Section):
    """Where a failed flow run is announced: a one-line JSON POST (Slack/Teams-style hooks)."""

    webhook: str | None = Field(default=None, pattern=r"^https?://")


class DvcParams(Section):
    """Where a successful run pushes the DVC-tracked outputs (data, models)."""

    # a remote named in .dvc/config (`dvc remote add -d NAME URL`); None: no push
    remote: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")


class Params(Section):
    paths: Paths = Paths()
    dataset: DatasetParams = DatasetParams()
    ingest: IngestParams = IngestParams()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    clean: CleanParams = CleanParams()
    split: SplitParams = SplitParams()
    standardize: StandardizeParams = StandardizeParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    tune: TuneParams = TuneParams()
    evaluate: EvaluateParams = EvaluateParams()
    register_: RegisterParams = Field(default=RegisterParams(), alias="register")
    mlflow: MlflowParams = MlflowParams()
    predict: PredictParams = PredictParams()
    drift: DriftParams = DriftParams()
    schedule: ScheduleParams = ScheduleParams()
    notify: NotifyParams = NotifyParams()
    dvc: DvcParams = DvcParams()

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: Any) -> Any:
        return with_task_defaults(raw) if isinstance(raw, dict) else raw

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> Params:
        """A metric the task's models or evaluate never produce is refused before any run."""
        task, register = self.dataset.task, self.register_
        curves = tune_metrics(task, self.model.type)
        named = [
            ("tune.metric", self.tune.metric, curves),
            ("register.metric", register.metric, GATE_METRICS[task]),
            *(("register.thresholds", name, SCORES[task]) for name in register.thresholds),
        ]
        for key, value, allowed in named:
            if value not in allowed:
                raise ValueError(
                    f"{key}: {value!r} does not fit dataset.task {task}; use one of {list(allowed)}"
                )
        return self


def _describe(error: ValidationError, source: Path) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {key!r}"
    message = first["msg"].removeprefix("Value error, ")
    if not first["loc"]:  # a rule across sections names its keys itself
        return f"{source}: {message}"
    return f"{source}: {key}: {message} (got {first.get('input')!r})"


def parse_params(raw: dict[str, Any], source: Path = PARAMS_FILE) -> Params:
    """Validate a params mapping; raise ParamsError with one line on the first problem."""
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(_describe(error, source)) from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml."""
    if not path.is_file():
        raise ParamsError(f"{path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return parse_params(raw, path)


def with_overrides(params: Params, overrides: dict[str, Any]) -> Params:
    """Return params with dotted `section.key` values replaced (used by grid points)."""
    data = params.model_dump(by_alias=True)
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        data[section][key] = value
    return parse_params(data)
