"""The code blocks of the README and of the docs pages run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from datacull import DCLogger, registry
from datacull.catalog import get_sampler
from datacull.methods.rcap import RCAPImportance

from .helpers import tensor_dataset

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def page(name: str) -> str:
    return README if name == "README.md" else (REPO / "docs" / name).read_text()


def python_block(containing: str, where: str = "README.md") -> str:
    return next(
        block for block in re.findall(r"```python\n(.*?)```", page(where), re.S) if containing in block
    )


def test_your_own_method_example_registers_and_works(tmp_path):
    namespace: dict = {}
    try:
        exec(python_block("@register_sampler"), namespace)
        assert get_sampler("keep_first") is namespace["KeepFirst"]
        dataset = tensor_dataset([0, 1] * 5)
        logger = DCLogger(tmp_path)
        for epoch in range(2):
            logger.log_metric(epoch, torch.arange(10), torch.arange(10.0) * (epoch + 1))
        scores = namespace["LastLoss"](dataset, window_size=1, logger_object=logger).compute_importance()
        assert scores.tolist() == [2.0 * i for i in range(10)] and scores.higher_is_harder
        assert namespace["KeepFirst"](dataset, pruning_rate=0.3).resample(scores).tolist() == list(range(7))
    finally:
        registry._REGISTRY["sampler"].pop("keep_first", None)
        registry._REGISTRY["importance"].pop("last_loss", None)


def test_lightning_example_trains_on_resampled_subsets(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.chdir(tmp_path)  # the example writes trajectories/, lightning_logs/ and a checkpoint here
    namespace: dict = {}
    exec(python_block("DataCullCallback(loader, importance)", "lightning.md"), namespace)
    loader, importance = namespace["loader"], namespace["importance"]
    assert namespace["trainer"].current_epoch == 3
    assert loader.num_resamples == 3 and loader.subset_indices.numel() == loader.required_num_samples
    assert importance.last_epoch_read == 1  # the resample before epoch 2 read the losses of epochs 0 and 1
    assert importance.logger.saved_epochs() == [2]  # RCAP deletes the epochs it has read
    (checkpoint,) = (tmp_path / "lightning_logs").rglob("*.ckpt")
    state = torch.load(checkpoint, weights_only=True)["callbacks"]["DataCullCallback"]
    assert torch.equal(state["source"]["loader"]["subset_indices"], loader.subset_indices)


def test_the_quickstart_run_twice_in_one_folder_refreshes_its_scores_every_epoch_both_times(
    tmp_path, monkeypatch
):
    """The second run must not read the first run's last epoch file left in trajectories/loss/."""
    monkeypatch.chdir(tmp_path)
    block = python_block("RCAPImportance(dataset, logger_object=logger")
    read_after_each_call = []
    compute = RCAPImportance.compute_importance

    def recording(self):
        scores = compute(self)
        read_after_each_call.append(self.last_epoch_read)
        return scores

    monkeypatch.setattr(RCAPImportance, "compute_importance", recording)
    for _ in range(2):  # as printed (its own data, model and optimizer), but without worker processes
        namespace: dict = {}
        exec(block.replace("num_workers=2", "num_workers=0"), namespace)
        namespace["logger"].flush()  # as the process's exit does: the last epoch's file stays in the folder
        assert namespace["loader"].required_num_samples == round(0.7 * 1797)
    # each run: before epoch e the importance has read epochs 0 .. e-1 of its own run, and nothing else
    assert read_after_each_call == [-1, 0, 1, 2, 3] * 2


def test_the_your_model_command_runs_as_printed_with_a_model_of_the_tests(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from datacull.cli import app

    line = next(line for line in README.splitlines() if line.startswith("datacull train model=custom"))
    arguments = line.split("#")[0].split()[2:]
    assert arguments == ["model=custom", "model._target_=mypackage.models.Net", "+model.hidden=256"]
    arguments[1] = "model._target_=tests.custom_models.TinyNet"  # the README's stands for the reader's own
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", *arguments, "trainer.epochs=1", "trainer.progress=log"])
    assert result.exit_code == 0, result.output


def test_the_readmes_data_commands_are_the_docs_page_commands_that_the_tests_run():
    """The README's "Your model, your data" commands are verbatim lines of docs/your-model-and-data.md, whose
    commands tests/test_docs_your_data.py runs (the model line runs in the test above)."""
    from .helpers import your_data_commands

    block = README.split("## Your model, your data", 1)[1].split("```", 2)[1]
    data_lines = [
        line.split("#")[0].strip()
        for line in block.splitlines()
        if line.startswith("datacull train dataset=")
    ]
    assert len(data_lines) == 2
    assert all(line in your_data_commands() for line in data_lines)


def test_the_front_door_is_short_and_every_link_it_gives_resolves():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert links, "the README links nothing"
    for link in links:
        if not link.startswith("http"):
            assert (REPO / link).is_file(), f"README links {link}, which does not exist"
    pages = {f"docs/{path.name}" for path in (REPO / "docs").glob("*.md")}
    assert pages <= set(links), f"docs pages the README does not link: {sorted(pages - set(links))}"
    assert len(README.splitlines()) <= 220, "the README is a front door; put the details in a docs page"


@pytest.mark.parametrize("name", sorted(path.name for path in (REPO / "docs").glob("*.md")))
def test_every_relative_link_of_a_docs_page_resolves(name):
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page(name)):
        if not link.startswith("http"):
            assert (REPO / "docs" / link).resolve().exists(), (
                f"docs/{name} links {link}, which does not exist"
            )
