"""The study of STUDY.md at CI size: the same script and preset on a 100-image subset, so it never rots.

It checks what must hold whatever the noise (every run completes, compute adds up, each method covers its rates,
the report and plot are produced); it asserts no accuracy ordering.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from .conftest import REPO, SHARED_CIFAR10

RATES = {0.5, 0.7, 0.9}


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CIFAR10.is_dir(), reason="needs ../shared/data/cifar10")
def test_the_quick_study_runs_every_method_and_reports_accuracy_against_compute(tmp_path):
    out = tmp_path / "study"
    env = {
        key: value for key, value in os.environ.items() if key != "DATACULL_CACHE_DIR"
    }  # the study's own cache
    result = subprocess.run(
        [sys.executable, "scripts/study.py", "--quick", "--seeds", "0", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summaries = [json.loads(path.read_text()) for path in out.rglob("summary.json")]
    assert {s["status"] for s in summaries} == {"completed"}
    by_method = {}
    for summary in summaries:
        by_method.setdefault((summary["importance"], summary["sampler"]), set()).add(summary["pruning_rate"])
        spent = summary["samples_trained"] + summary["scoring_cost_samples"]
        assert summary["compute_saved"] == pytest.approx(1 - spent / summary["full_data_samples"])
        assert summary["full_data_samples"] == summary["epochs"] * summary["num_train_samples"]
        assert summary["num_train_samples"] == 100  # no method trains on fewer samples than the others
    for method in (
        "aum/ccs",
        "tdds/tdds",
        "el2n/topk",
        "uniform/random",
        "uniform/rs2",
        "rcap/rcap",
        "uniform/metriq",
    ):
        assert by_method[tuple(method.split("/"))] == RATES, method
    assert by_method[("uniform", "full")] == {0.0} and by_method[("loss", "infobatch")] == {0.5}
    # the static methods of a seed share one scoring run (trained once, then read from the cache); the proxy
    # rows share another, narrower one, charged by its FLOPs
    static = [s for s in summaries if s["sampler"] in ("ccs", "tdds", "topk")]
    assert sum(not s["scoring_cache_hit"] for s in static) == 2
    assert (
        len(list((out / "cache" / "scoring").glob("*/meta.json"))) == 3
    )  # those two, and MetriQ's query run
    proxied = [s for s in static if s.get("scoring_flops_ratio", 1.0) < 1.0]
    assert len(proxied) == 6 and all(s["scoring_model"] == "cnn" for s in proxied)
    table = pd.read_csv(out / "report.csv")
    # full, 7 methods at 3 rates, InfoBatch; the proxy rows split from the others by their scoring.model settings
    assert len(table) == 1 + 7 * 3 + 1 + 2 * 3 and table["compute_mean"].notna().all()
    overlap = pd.read_csv(out / "overlap.csv")
    assert len(overlap) == 2 * 3 and overlap["kept_overlap"].between(0, 1).all()
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG")
    assert "Δ test vs random" in (out / "report.md").read_text()
