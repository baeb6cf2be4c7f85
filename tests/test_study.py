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

from .helpers import REPO, SHARED_CIFAR10

RATES = {0.5, 0.7, 0.9}


#: One entry of each kind: equal epochs (static, proxy-scored), the frontier, InfoBatch (dynamic) and its derived
#: same-compute controls, equal steps.
ENTRIES = [
    "full",
    "frontier",
    "random",
    "ccs_aum",
    "ccs_aum_proxy",
    "infobatch",
    "rs2_at_infobatch_rate",
    "frontier_at_infobatch_compute",
    "random_equal_steps",
]


def load_study():
    """scripts/study.py as a module (scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("study_script", REPO / "scripts" / "study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    return study


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CIFAR10.is_dir(), reason="needs ../shared/data/cifar10")
def test_the_quick_study_runs_every_kind_of_row_and_reports_against_the_frontier(tmp_path):
    out = tmp_path / "study"
    env = {
        key: value for key, value in os.environ.items() if key != "DATACULL_CACHE_DIR"
    }  # the study's own cache
    command = [sys.executable, "scripts/study.py", "--quick", "--seeds", "0", "--out", str(out)]
    result = subprocess.run(
        [*command, "--methods", ",".join(ENTRIES)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summaries = {}
    for path in out.rglob("summary.json"):
        summary = json.loads(path.read_text())
        summaries.setdefault(path.parent.parent.name, []).append(summary)
    assert set(summaries) == set(ENTRIES)
    for entry, runs in summaries.items():
        for summary in runs:
            assert summary["status"] == "completed", entry
            spent = summary["samples_trained"] + summary["scoring_cost_samples"]
            assert summary["compute_saved"] == pytest.approx(1 - spent / summary["full_data_samples"])
            assert summary["full_data_samples"] == summary["epochs"] * summary["num_train_samples"]
            assert summary["num_train_samples"] == 100  # no method trains on fewer samples than the others
    assert {s["pruning_rate"] for s in summaries["ccs_aum"]} == RATES
    assert {s["compute_budget"] for s in summaries["frontier"]} == {0.1, 0.3, 0.5, 0.7}
    assert all(s["budget"] == "equal_steps" for s in summaries["random_equal_steps"])
    # the same-compute controls are derived from this seed's InfoBatch run
    (infobatch,) = summaries["infobatch"]
    (rs2,) = summaries["rs2_at_infobatch_rate"]
    (frontier,) = summaries["frontier_at_infobatch_compute"]
    assert rs2["pruning_rate"] == pytest.approx(infobatch["realized_pruning_rate"], abs=6e-4)
    assert frontier["compute_budget"] == pytest.approx(1 - infobatch["compute_saved"], abs=6e-4)
    # the static methods of a seed share one scoring run; the proxy rows another, narrower one
    static = summaries["ccs_aum"] + summaries["ccs_aum_proxy"]
    assert sum(not s["scoring_cache_hit"] for s in static) == 2
    assert all(
        s["scoring_model"] == "cnn" and s["scoring_flops_ratio"] < 1 for s in summaries["ccs_aum_proxy"]
    )

    table = pd.read_csv(out / "report.csv")
    assert table["compute_mean"].notna().all()
    at_half = table[
        (table["sampler"] == "random") & (table["pruning_rate"] == 0.5) & (table["budget"] == "epochs")
    ]
    assert at_half["delta_frontier_test_acc"].notna().all()  # compute 0.5 lies on the measured frontier
    ccs = table[table["sampler"] == "ccs"]
    assert ccs[ccs["compute_mean"] > 1]["delta_frontier_test_acc"].isna().all()  # beyond full data: blank
    reached = pd.read_csv(out / "report_time_to_accuracy.csv")
    assert "full data trained for less (frontier)" in set(reached["method"])
    overlap = pd.read_csv(out / "overlap.csv")
    assert len(overlap) == 3 and overlap["kept_overlap"].between(0, 1).all()
    classes = pd.read_csv(out / "classes.csv")
    at_90 = classes[(classes["method"] == "ccs_aum") & (classes["pruning_rate"] == 0.9)]
    assert at_90["kept"].sum() == 10 and at_90["trained_share"].sum() == pytest.approx(1.0, abs=1e-3)
    for picture in ("report.png", "report_curves.png"):
        assert (out / picture).read_bytes().startswith(b"\x89PNG")
    assert "Δ test vs frontier" in (out / "report.md").read_text()

    # the exported records alone reproduce the report (what docs/study commits)
    exported = tmp_path / "exported"
    assert subprocess.run([*command, "--export", str(exported)], cwd=REPO, env=env).returncode == 0
    assert not list(exported.rglob("samples.csv")) and len(list(exported.rglob("summary.json"))) == sum(
        map(len, summaries.values())
    )
    again = subprocess.run(
        [sys.executable, "-m", "datacull", "report", str(exported), "--out", str(exported)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    recomputed = pd.read_csv(exported / "report.csv")
    pd.testing.assert_frame_equal(
        recomputed.drop(columns=["train_time_s_mean", "scoring_cost_s_mean", "wall_time_s_mean"]),
        table.drop(columns=["train_time_s_mean", "scoring_cost_s_mean", "wall_time_s_mean"]),
    )


def test_exporting_a_later_session_keeps_the_class_rows_of_the_earlier_ones(tmp_path):
    """Earlier seeds' samples.csv are not committed: their class rows must survive a later export."""
    study = load_study()

    def rows(seed: int, kept: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "method": "random",
                "seed": seed,
                "pruning_rate": 0.9,
                "label": [0, 1],
                "trained_share": 0.5,
                "kept": kept,
            }
        )

    committed, new = tmp_path / "committed.csv", tmp_path / "new.csv"
    pd.concat([rows(0, 50), rows(1, 51)]).to_csv(committed, index=False)
    pd.concat([rows(1, 60), rows(2, 52)]).to_csv(new, index=False)  # seed 1 exported again, and seed 2
    study.merge_classes(new, committed)
    merged = pd.read_csv(committed)
    assert merged.groupby("seed")["kept"].first().to_dict() == {0: 50, 1: 60, 2: 52}
    assert len(merged) == 6


def test_infobatch_is_paired_with_the_controls_of_its_own_seed_and_epochs():
    study = load_study()
    runs = pd.DataFrame(
        [
            {"entry": "infobatch", "seed": 0, "epochs": 24, "test_acc": 0.60, "compute": 0.733},
            {"entry": "infobatch", "seed": 1, "epochs": 24, "test_acc": 0.62, "compute": 0.733},
            {
                "entry": "frontier_at_infobatch_compute",
                "seed": 0,
                "epochs": 24,
                "test_acc": 0.59,
                "compute": 0.733,
            },
            {
                "entry": "frontier_at_infobatch_compute",
                "seed": 1,
                "epochs": 24,
                "test_acc": 0.60,
                "compute": 0.733,
            },
            {"entry": "infobatch_96_epochs", "seed": 0, "epochs": 96, "test_acc": 0.70, "compute": 0.731},
            {
                "entry": "frontier_at_infobatch_compute_96_epochs",
                "seed": 0,
                "epochs": 96,
                "test_acc": 0.71,
                "compute": 0.731,
            },
            {"entry": "rs2_at_infobatch_rate", "seed": 1, "epochs": 24, "test_acc": 0.61, "compute": 0.733},
        ]
    )
    lines = study.infobatch_controls(runs)
    rows = [line for line in lines if line.startswith("| 24 |") or line.startswith("| 96 |")]
    assert rows[0].endswith("| — | — | 0.5900 (compute 0.733) | +1.00 |")  # seed 0 has no RS2 control
    assert "| +1.00 |" in rows[1] and rows[1].endswith("| +2.00 |")
    assert rows[2].startswith("| 96 | 0 | 0.7000") and rows[2].endswith(
        "| -1.00 |"
    )  # never the 24-epoch control
    # the 24-epoch frontier deltas +1 and +2: mean 1.5, sd 0.707, t(0.975, 1) = 12.706 -> half-width 6.35
    assert "- 24 epochs, InfoBatch − the frontier: +1.50 ± 6.35 points (n=2)" in lines
    assert "- 24 epochs, InfoBatch − RS2: +1.00 points (n=1)" in lines
    assert "- 96 epochs, InfoBatch − the frontier: -1.00 points (n=1)" in lines


def test_a_followup_delta_pairs_only_the_seeds_both_rows_have():
    study = load_study()
    runs = pd.DataFrame(
        [
            {"method": "tdds", "pruning_rate": 0.7, "seed": 0, "test_acc": 0.50},
            {"method": "tdds", "pruning_rate": 0.7, "seed": 1, "test_acc": 0.54},
            {"method": "tdds", "pruning_rate": 0.7, "seed": 2, "test_acc": 0.90},  # no random of seed 2
            {"method": "random", "pruning_rate": 0.7, "seed": 0, "test_acc": 0.49},
            {"method": "random", "pruning_rate": 0.7, "seed": 1, "test_acc": 0.51},
            {"method": "random", "pruning_rate": 0.9, "seed": 2, "test_acc": 0.10},
        ]
    )
    # deltas +1 and +3 points: mean 2, sd 1.414, t(0.975, 1) = 12.706 -> 12.71
    assert study.paired_delta(runs, "tdds", "random", 0.7, "test_acc") == "+2.00 ± 12.71 (n=2)"
    assert study.paired_delta(runs, "tdds", "random", 0.9, "test_acc") == "—"


def test_the_longer_budgets_frontier_control_reads_the_longer_infobatch_run():
    study = load_study()
    controlled, control = study.INFOBATCH_CONTROLS["frontier_at_infobatch_compute_96_epochs"]
    assert controlled == "infobatch_96_epochs"
    overrides = control({"compute_saved": 0.26871, "realized_pruning_rate": 0.3})
    assert "trainer.compute=0.731" in overrides and "trainer.epochs=96" in overrides
    assert study.DEFAULT_ORDER.index("frontier_at_infobatch_compute_96_epochs") > study.DEFAULT_ORDER.index(
        "infobatch_96_epochs"
    )


def test_the_tables_in_study_md_are_what_the_committed_records_give():
    """STUDY.md embeds `study.py --tables docs/study/runs` and `--followup-tables docs/study` between markers: a
    record added or changed without regenerating them (or a report change that moves a number) fails here."""
    import re

    study = load_study()
    text = (REPO / "STUDY.md").read_text()
    for marker, generated in (
        ("tables", study.tables(REPO / "docs" / "study" / "runs")),
        ("followup", study.followup_tables(REPO / "docs" / "study")),
    ):
        embedded = re.search(rf"<!-- {marker}: .*? -->\n(.*?)\n<!-- /{marker} -->", text, re.S)
        assert embedded, f"STUDY.md lost the markers of its generated {marker} block"
        assert embedded.group(1).strip() == generated.strip(), marker
