"""Fitted scikit-learn objects (the preprocessor, the `sklearn_mlp` network) as skops files:
loading one constructs only the types skops trusts by default (scikit-learn estimators, NumPy
and SciPy arrays, builtins) and those in TRUSTED_TYPES, and never unpickles anything.

A file that holds any other type is refused with the list of what it holds, so a file in the
artifact store cannot make the process that loads it import or call anything else.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from tasks.runtime import UserError

# Every type beyond skops' defaults that this pipeline writes; a type added to a fitted object
# must be added here, or its files will not load (tests/tasks/test_skops_files.py checks both)
TRUSTED_TYPES = (
    "tasks.preprocessing.Preprocessor",
    "tasks.preprocessing.FlatScaler",
    "tasks.preprocessing._to_float32",  # the float32 cast of the table transformer's numbers
    "numpy.dtype",  # the dtypes scikit-learn's imputers and encoders keep
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# skops names objects (and the files of their arrays) by Python's id() of the moment
_OBJECT_ID = re.compile(r'("__id__": |"file": ")([\w-]+)')


def save_skops(obj: Any, path: Path) -> None:
    """Write obj as a skops file; the same fitted object gives the same bytes (object ids
    renumbered in order, fixed entry times), so both doors write files with one md5."""
    import skops.io

    with zipfile.ZipFile(io.BytesIO(skops.io.dumps(obj))) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    ids: dict[str, str] = {}
    schema = _OBJECT_ID.sub(
        lambda m: m.group(1) + ids.setdefault(m.group(2), str(len(ids))),
        members.pop("schema.json").decode(),
    )
    with zipfile.ZipFile(path, "w") as out:
        for name, data in members.items():  # array files, named by their object's id
            stem, dot, suffix = name.partition(".")
            out.writestr(zipfile.ZipInfo(f"{ids[stem]}{dot}{suffix}", _FIXED_TIME), data)
        out.writestr(zipfile.ZipInfo("schema.json", _FIXED_TIME), schema)


def load_skops(path: Path) -> Any:
    """The object in a skops file; UserError if it holds a type outside TRUSTED_TYPES, or is
    no skops file (such as a pickle that an earlier version of the pipeline wrote)."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return skops.io.load(path, trusted=list(TRUSTED_TYPES))
    except zipfile.BadZipFile:
        raise UserError(
            f"{path}: not a skops file (a pickle from before the pipeline used skops?); "
            "pickles are not read"
        ) from None
    except UntrustedTypesFoundException:
        found = sorted(set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
        raise UserError(
            f"{path}: refused, it holds {found}: types outside tasks.skops_files.TRUSTED_TYPES"
        ) from None
