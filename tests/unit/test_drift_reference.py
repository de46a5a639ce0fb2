"""The loop's drift reference: @champion's data is profiled exactly once, stored in the artifact
store and named on @champion's version, then read back (not re-read from the snapshot) by the
next training runs; a different column set or snapshot profiles again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from decisionloop.evaluation.drift import drift_report, exact_profile
from decisionloop.evaluation.drift_profile import ReferenceProfile, column_kind
from decisionloop.pipelines import assess
from decisionloop.pipelines.assess import (
    PROFILE_KEY_TAG,
    PROFILE_SHA256_TAG,
    PROFILE_TAG,
    load_reports,
    reference_profile,
)
from decisionloop.pipelines.training_data import training_table
from decisionloop.platform import Platform
from tests.datasets import loan_defaults, write

COLUMNS = ["applicant_income", "age", "region", "has_guarantor", "debt_ratio"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Version 1 trained on one loan book, then a run on another (a new snapshot)."""
    import yaml

    folder = tmp_path_factory.mktemp("loans-drift")
    project = {
        "name": "loans",
        "data": {
            "source": "loans.csv",
            "target": "status",
            "positive": "default",
            "exclude": ["loan_ref"],
        },
        "model": {"trainer": "logistic_regression"},
        "gates": [{"metric": "test_auc", "min": 0.5}],
    }
    (folder / "decisionloop.yaml").write_text(yaml.safe_dump(project))
    write(loan_defaults(rows=600, seed=3), folder / "loans.csv")
    with Platform.open(folder) as platform:
        platform.run()
        write(loan_defaults(rows=700, seed=4), folder / "loans.csv")
        platform.run()
        yield platform


def _first(platform: Platform) -> tuple[Any, Any]:
    version = platform.get_version("loans/1")
    assert version.run_id is not None
    return version, platform.runs.get(version.run_id)


def test_the_champion_reference_is_profiled_once_and_stored(two_runs: Platform) -> None:
    second = two_runs.get_version("loans/2")
    drift = load_reports(two_runs, second.tags)["drift"]
    assert drift["reference"].startswith("@champion's training snapshot")
    version, run = _first(two_runs)
    for tag in (PROFILE_TAG, PROFILE_SHA256_TAG, PROFILE_KEY_TAG):
        assert version.tags.get(tag)
    stored = ReferenceProfile.from_bytes(
        two_runs.artifacts.get(version.tags[PROFILE_TAG], sha256=version.tags[PROFILE_SHA256_TAG])
    )
    # exactly the profile of the champion's rows, as the loop profiled them before caching
    table = training_table(two_runs, str(run.snapshot_id), run.feature_versions).to_pandas()
    kinds = {name: stored.columns[name].kind for name in stored.columns}
    assert set(kinds) == set(COLUMNS)
    assert stored.to_dict() == exact_profile(table[list(kinds)], kinds).to_dict()
    # and the stored report is what comparing with the champion's frame gives
    current = two_runs.data.read_snapshot().to_pandas()
    from_profile = drift_report(stored, current[list(kinds)], kinds).to_dict()
    from_frame = drift_report(table[list(kinds)], current[list(kinds)], kinds).to_dict()
    assert from_profile == from_frame


def test_the_next_run_reads_the_stored_profile_not_the_snapshot(
    two_runs: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, run = _first(two_runs)
    stored_key = version.tags[PROFILE_TAG]
    stored = ReferenceProfile.from_bytes(two_runs.artifacts.get(stored_key))
    columns = {name: column_kind(stored.columns[name].kind) for name in COLUMNS}

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the champion's snapshot was read again")

    monkeypatch.setattr("decisionloop.pipelines.training_data.training_table", no_reading)
    again = reference_profile(two_runs, version, run, columns)
    assert set(again.columns) == set(COLUMNS)
    assert two_runs.get_version("loans/1").tags[PROFILE_TAG] == stored_key
    # another column set is another profile: it must read the data
    with pytest.raises(AssertionError, match="read again"):
        reference_profile(two_runs, version, run, {"age": "numeric"})


def test_a_removed_profile_is_rebuilt(two_runs: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    version, run = _first(two_runs)
    columns = {"age": "numeric", "region": "categorical"}
    first = reference_profile(two_runs, version, run, columns)
    tagged = two_runs.get_version("loans/1")
    assert tagged.tags[PROFILE_KEY_TAG] != version.tags[PROFILE_KEY_TAG]
    two_runs.artifacts.delete(tagged.tags[PROFILE_TAG])
    reads: list[str] = []
    real = training_table

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append("read")
        return real(*args, **kwargs)

    monkeypatch.setattr("decisionloop.pipelines.training_data.training_table", counted)
    rebuilt = reference_profile(two_runs, tagged, run, columns)
    assert reads == ["read"]
    assert rebuilt.to_dict() == first.to_dict()
    assert assess.PROFILE_TAG in two_runs.get_version("loans/1").tags


def test_profile_bytes_are_smaller_than_json_and_exact(tmp_path: Path) -> None:
    import json

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=50_000),
            "n": rng.integers(0, 40, 50_000).astype(float),
            "c": rng.choice(np.array(["a", "b", None], dtype=object), 50_000),
        }
    )
    frame.loc[::9, "x"] = np.nan
    kinds: dict[str, Any] = {"x": "numeric", "n": "numeric", "c": "categorical"}
    for sketch in (None, 256):
        profile = ReferenceProfile.build(frame, kinds, sketch_size=sketch)
        data = profile.to_bytes()
        again = ReferenceProfile.from_bytes(data)
        assert again.to_dict() == profile.to_dict()
        if sketch is None:  # about 9 bytes per distinct value, JSON about 40
            assert len(data) < len(json.dumps(profile.to_dict())) / 3
    with pytest.raises(Exception, match="not a stored reference profile"):
        ReferenceProfile.from_bytes(b"not a profile")
