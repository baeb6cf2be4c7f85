"""A method registered by a third-party package (an entry point of a tiny distribution made here) is listed and
chosen from the command line, its parameters overridable, with no YAML file of its own."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from datacull.plugins import node_from_signature

from .helpers import FAST, REPO, datacull

PLUGIN = '''
import numpy as np

from datacull import DCDataLoader, register_sampler


@register_sampler("every_kth")
class EveryKth(DCDataLoader):
    """Keeps every k-th sample, from an offset (a third-party sampler)."""

    static = True
    uses_scores = False

    def __init__(self, dataset, pruning_rate, k: int = 2, offset: int = 0, **kwargs):
        super().__init__(dataset, pruning_rate, **kwargs)
        self.k, self.offset = k, offset

    def compute_subset(self, sample_importance):
        return np.arange(self.offset, self.total_num_samples, self.k)[: self.required_num_samples]
'''


@pytest.fixture
def site(tmp_path):
    """A folder holding ``datacull_every_kth.py`` and its distribution's entry point in the datacull.samplers group."""
    site = tmp_path / "site"
    (site / "datacull_every_kth-0.1.dist-info").mkdir(parents=True)
    (site / "datacull_every_kth.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "datacull_every_kth-0.1.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: datacull-every-kth\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[datacull.samplers]\nevery_kth = datacull_every_kth\n")
    return site


def run(site, cwd, *arguments):
    path = os.pathsep.join([str(site), str(REPO)])
    return datacull(*arguments, cwd=cwd, check=False, env={"PYTHONPATH": path})


@pytest.mark.slow
def test_an_entry_point_sampler_is_listed_and_trains_from_the_command_line(tmp_path, site):
    listed = run(site, tmp_path, "list")
    assert listed.returncode == 0 and "every_kth" in listed.stdout
    trained = run(
        site,
        tmp_path,
        "train",
        *FAST,
        "sampler=every_kth",
        "sampler.k=3",
        "sampler.offset=1",
        "trainer.epochs=1",
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    (summary_path,) = (tmp_path / "outputs").rglob("summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "completed" and summary["sampler"] == "every_kth"
    import pandas as pd

    samples = pd.read_csv(summary_path.parent / "samples.csv")
    kept = samples.loc[samples["times_selected"] > 0, "index"].tolist()
    assert kept == list(range(1, 120, 3))[:60]  # k=3 from offset 1: 40 samples, fewer than the 60 allowed
    config = (summary_path.parent / "config.yaml").read_text()
    assert "k: 3" in config and "offset: 1" in config


def test_a_misspelled_parameter_of_a_plugin_is_refused_like_a_built_ins(tmp_path, site):
    result = run(site, tmp_path, "train", *FAST, "sampler=every_kth", "sampler.kk=3")
    assert result.returncode == 2
    assert "sampler.kk does not exist; did you mean sampler.k" in result.stderr


def test_a_node_is_made_from_the_constructor_signature():
    class Sampler:
        static = False

        def __init__(
            self, dataset, pruning_rate, window: int = 3, mode="fast", scale=1.5, callback=len, **kwargs
        ):
            pass

    node = node_from_signature(Sampler, "mine", "sampler")
    assert node == {
        "name": "mine",
        "pruning_rate": 0.5,
        "window": 3,
        "mode": "fast",
        "scale": 1.5,
        "resample_every": 1,
    }


def test_a_sampler_taking_its_rate_through_kwargs_still_gets_a_pruning_rate_key():
    class Passes:
        static = True

        def __init__(self, dataset, **kwargs):
            pass

    assert node_from_signature(Passes, "passes", "sampler") == {"name": "passes", "pruning_rate": 0.5}
