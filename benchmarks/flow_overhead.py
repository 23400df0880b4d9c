"""Issue 4's digits figure: the whole retrain flow versus a bare script doing the same work.

    python benchmarks/flow_overhead.py [--rounds 2]

Ours: `python -m flows.retrain` in a fresh copy of the project (code, params.yaml,
dvc.yaml; no outputs, a new MLflow store), so every step runs: Prefect's temporary server,
validation, DVC bookkeeping, MLflow logging, the registry. Bare: one script with the same
split, scaling, grid (tune.grid for tune.epochs), final training and test metrics written
with Keras and scikit-learn directly. Each side runs in its own process, alternating, and
the result is the extra seconds of ours (target <= 5) and the ratio of the totals (target
<= 1.1) in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from projects import PROJECT_FILES, fresh_project, measured_at  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "flow_overhead.json"

BARE = r"""
import itertools, os, sys, yaml
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

p = yaml.safe_load(open(sys.argv[1]))
digits = load_digits()
x, y = digits.images[..., None].astype("float32"), digits.target
rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=round(len(y) * 0.2),
                                                random_state=42, stratify=y)
x_train, x_val, y_train, y_val = train_test_split(rest, y_rest, test_size=round(len(y) * 0.1),
                                                  random_state=42, stratify=y_rest)
scaler = MinMaxScaler().fit(x_train.reshape(len(x_train), -1))
scale = lambda a: scaler.transform(a.reshape(len(a), -1)).reshape(a.shape).astype("float32")
x_train, x_val, x_test = scale(x_train), scale(x_val), scale(x_test)

def fit(lr, dropout, epochs):
    keras.utils.set_random_seed(42)
    layers = [keras.Input((8, 8, 1))]
    for filters in p["model"]["conv_filters"]:
        layers += [keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                       kernel_initializer="he_normal"),
                   keras.layers.MaxPooling2D(2, padding="same")]
    layers += [keras.layers.Dropout(dropout), keras.layers.Flatten()]
    for units in p["model"]["hidden_units"]:
        layers += [keras.layers.Dense(units, activation="relu", kernel_initializer="he_normal"),
                   keras.layers.Dropout(dropout)]
    model = keras.Sequential(layers + [keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=0,
                        validation_data=(x_val, y_val), callbacks=[stop])
    return model, max(history.history["val_accuracy"])

grid = p["tune"]["grid"]
points = [dict(zip(grid, v)) for v in itertools.product(*grid.values())]
scores = [fit(pt.get("train.learning_rate", p["train"]["learning_rate"]),
              pt.get("model.dropout", p["model"]["dropout"]), p["tune"]["epochs"])[1]
          for pt in points]
best = points[int(np.argmax(scores))]
model, _ = fit(best.get("train.learning_rate", p["train"]["learning_rate"]),
               best.get("model.dropout", p["model"]["dropout"]), p["train"]["epochs"])
predicted = model.predict(x_test, verbose=0).argmax(axis=1)
prf = precision_recall_fscore_support(y_test, predicted, average="macro", zero_division=0)
print({"accuracy": accuracy_score(y_test, predicted), "f1": prf[2]})
"""


def _fresh_project(target: Path) -> Path:
    return fresh_project(ROOT, target, PROJECT_FILES)


def _timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    python = sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {
        "PATH": f"{Path(python).parent}:{env['PATH']}",
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    ours, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bare.py"
        script.write_text(BARE)
        for round_ in range(args.rounds):
            project = _fresh_project(Path(tmp) / f"project-{round_}")
            sides = [
                ("ours", [python, "-m", "flows.retrain"]),
                ("bare", [python, str(script), str(project / "params.yaml")]),
            ]
            for name, command in sides if round_ % 2 == 0 else sides[::-1]:
                (ours if name == "ours" else bare).append(_timed(command, project, env))
    extra = [o - b for o, b in zip(ours, bare, strict=True)]
    result = {
        "rounds": args.rounds,
        "ours_s": [round(s, 1) for s in ours],
        "bare_s": [round(s, 1) for s in bare],
        "extra_s": [round(s, 1) for s in extra],
        "mean_extra_s": round(sum(extra) / len(extra), 1),
        "ratio": round(sum(ours) / sum(bare), 3),
        "target_extra_s": 5,
        "target_ratio": 1.1,
    }
    result["met"] = result["mean_extra_s"] <= 5 and result["ratio"] <= 1.1
    RESULTS.parent.mkdir(exist_ok=True)
    result["commit"] = measured_at()
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
