"""Selections pinned: the same inputs give the same selection as the release they were taken on.

The file ``data/pinned_selections.json`` holds the kept files of a few runs on
synthetic data sets (two data sets, both strategies, three targets). A change
that moves any of them must be intended: say so in the CHANGELOG and re-pin
with ``python tests/test_pinned_selection.py > tests/data/pinned_selections.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from smartdownsample import downsample
from smartdownsample.synthetic import make_dataset

PINNED = Path(__file__).parent / "data" / "pinned_selections.json"
DATA_SETS = ((3, 150), (8, 240))
STRATEGIES = ("burst", "spec")
TARGETS = (5, 24, 60)
SEED = 7


def selections(root: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for data_seed, size in DATA_SETS:
        base = root / f"s{data_seed}"
        paths = make_dataset(base, size, seed=data_seed).paths
        for strategy in STRATEGIES:
            for target in TARGETS:
                result = downsample(
                    paths, target, show_progress=False, strategy=strategy, random_seed=SEED
                )
                out[f"{data_seed}-{size}-{strategy}-{target}"] = sorted(
                    Path(os.path.relpath(p, base)).as_posix() for p in result.selected_paths
                )
    return out


def test_selections_are_as_pinned(tmp_path: Path) -> None:
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    made = selections(tmp_path)
    assert made.keys() == pinned.keys()
    changed = [key for key in pinned if made[key] != pinned[key]]
    assert not changed, f"selections changed for {changed}"


if __name__ == "__main__":  # re-pin (see the module docstring)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        json.dump(selections(Path(folder)), sys.stdout, indent=1, sort_keys=True)
        print()
