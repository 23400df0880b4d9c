"""MNIST with the pipeline's CNN: test accuracy, target >= 0.99 on a 2-core CPU.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/train_mnist.py [--epochs 12]

Keeps MNIST's own split (the last 5,000 of the 60,000 training images validate, the 10,000
t10k images test), scales with the pipeline's min-max FlatScaler fitted on the training
images, and trains with `train_model` (params.yaml's model/train plus the overrides below).
Writes benchmarks/results/train_mnist.json.
"""

from __future__ import annotations

import argparse

from train_common import ROOT, mnist_splits, scale_minmax, train_and_score, write_result

TARGET = 0.99
OVERRIDES = {
    "model.conv_filters": [32, 64],
    "model.hidden_units": [128],
    "model.dropout": 0.25,
    "train.batch_size": 128,
    "train.learning_rate": 0.001,
    "train.lr_decay": "plateau",
    "train.early_stopping": {"monitor": "val_loss", "patience": 3, "restore_best_weights": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()

    from tasks.runtime import configure, import_tensorflow

    configure()
    import_tensorflow()
    from tasks.config import load_params, with_overrides

    params = with_overrides(
        load_params(ROOT / "params.yaml"), {**OVERRIDES, "train.epochs": args.epochs}
    )
    splits = scale_minmax(mnist_splits())
    network, history, seconds, accuracy = train_and_score(params, splits)
    write_result(
        "train_mnist",
        {
            "dataset": "MNIST, its own split: 55,000 train / 5,000 validation / 10,000 test",
            "overrides": OVERRIDES,
            "parameters": int(network.count_params()),
            "epochs_configured": args.epochs,
            "epochs_run": len(history.epoch),
            "train_seconds": round(seconds, 1),
            "seconds_per_epoch": round(seconds / max(len(history.epoch), 1), 1),
            "val_accuracy_per_epoch": [round(v, 4) for v in history.history["val_accuracy"]],
            "test_accuracy": round(accuracy, 4),
            "target": TARGET,
            "met": accuracy >= TARGET,
        },
    )


if __name__ == "__main__":
    main()
