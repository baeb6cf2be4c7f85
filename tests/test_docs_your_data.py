"""docs/your-model-and-data.md runs as printed: its files are written where it says, its commands run (shortened to
two epochs), with the data sets that stand for the reader's own replaced by the tests'."""

from __future__ import annotations

import json
import re

import pytest

from .helpers import YOUR_DATA_PAGE, run_dirs, save_token_dataset, write_mnist, your_data_commands

PAGE = YOUR_DATA_PAGE.read_text()
COMMANDS = your_data_commands()
#: What stands for the reader's own data, and what the test trains instead (offline, in seconds).
STAND_INS = {
    "mypackage.text.Reviews": "tests.custom_data.TokenSequences",
    "dataset.download=true": "dataset.root={mnist}",
    "dataset.path=./reviews": "dataset.path={reviews}",
}
SHORT = ["trainer.epochs=2", "trainer.progress=log", "dataset.workers=0", "model.width=4"]


def files_of_the_page(root) -> None:
    """Each python block that starts with ``# <path>`` written to that path under ``root``."""
    for block in re.findall(r"```python\n(.*?)```", PAGE, re.S):
        path = re.match(r"# (\S+\.py)\n", block)
        assert path, f"a python block of the page names no file:\n{block[:80]}"
        target = root / path.group(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        target.write_text(block)


def test_the_page_shows_every_kind_of_data_it_describes():
    used = " ".join(COMMANDS)
    for setting in (
        "dataset=custom",
        "dataset=torchvision",
        "dataset=hf",
        "dataset.collate_fn",
        "dataset.augment",
    ):
        assert setting in used, setting
    assert "sampler=ccs" in used and "sampler=infobatch" in used  # a static and a dynamic method


@pytest.mark.slow
@pytest.mark.parametrize("number", range(len(COMMANDS)))
def test_each_command_of_the_page_runs(tmp_path, monkeypatch, number):
    from typer.testing import CliRunner

    from datacull.cli import app

    command = COMMANDS[number]
    if "dataset=hf" in command:
        save_token_dataset(tmp_path / "reviews")
    write_mnist(tmp_path / "mnist")
    files_of_the_page(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for mine, theirs in STAND_INS.items():
        command = command.replace(mine, theirs.format(mnist=tmp_path / "mnist", reviews=tmp_path / "reviews"))
    short = [override for override in SHORT if override != "model.width=4" or "model=cnn" in command]
    result = CliRunner().invoke(app, [*command.split()[1:], *short])
    assert result.exit_code == 0, result.output
    (run,) = run_dirs(tmp_path / "outputs")
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
