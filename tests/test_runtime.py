from __future__ import annotations

import gc

from tasks.runtime import importing


def test_nested_imports_keep_collection_off_until_the_outermost_ends() -> None:
    assert gc.isenabled()
    with importing():
        with importing():  # e.g. import_tensorflow() inside a step's own import
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
