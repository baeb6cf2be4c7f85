"""The ``datacull`` command: ``train`` (Hydra), ``list``, ``resume``, ``report``.

``datacull train`` hands its arguments to Hydra untouched (overrides, ``-m``, ``--cfg job``, ``--info``...):
``@hydra.main`` parses ``sys.argv`` itself, so the command sets ``sys.argv`` to them for the call. Errors caused by
the input print one line and exit with status 2; ``--debug`` (or ``HYDRA_FULL_ERROR=1``) shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from pathlib import Path

import typer

from .paths import config_dir, config_groups

log = logging.getLogger("datacull")


def _train_help() -> str:
    width = max(len(group) for group in config_groups())
    groups = "\n".join(
        f"  {group:<{width}}  {', '.join(options)}" for group, options in config_groups().items()
    )
    return f"""Train one configuration (or a sweep with -m) and write its run folder.

\b
All arguments are Hydra overrides, e.g.:
  datacull train importance=tdds sampler=ccs sampler.pruning_rate=0.7
  datacull train -m importance=aum sampler=ccs sampler.pruning_rate=0.3,0.5,0.7,0.9 seed=0,1
  datacull train dataset=imagefolder dataset.root=../shared/data/cifar10 dataset.subset_per_class=100 model=cnn
  datacull train --cfg job          (print the composed config)   datacull train --info

\b
Config groups (choose one with group=option):
{groups}

\b
Common keys: seed, sampler.pruning_rate (fraction REMOVED, in [0, 1)), sampler.resample_every,
trainer.epochs, trainer.steps, trainer.batch_size, trainer.device (auto|cpu|cuda), trainer.amp,
trainer.eval_every, scoring.epochs, scoring.model (a proxy model for the scoring run),
dataset.root, dataset.subset_per_class, dataset.val_fraction, importance.trajectory_length,
importance.window_size, importance.decay, cache_dir, output_dir.
Run folders land in outputs/runs/ (sweeps in outputs/sweeps/). `datacull list` describes every option.

\b
Sweep jobs in parallel or on a cluster (Hydra launchers):
  datacull train -m hydra/launcher=joblib hydra.launcher.n_jobs=4 sampler.pruning_rate=0.3,0.5,0.7,0.9
  datacull train -m hydra/launcher=slurm hydra.launcher.partition=gpu sampler.pruning_rate=0.3,0.5,0.7,0.9
A sweep runs every job; failed ones are named at the end and the exit status is then 1.
"""


app = typer.Typer(
    help="datacull: data pruning during training. `datacull train` runs experiments; `datacull list` shows the methods.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _as_group_choice(override: str) -> str:
    """``scoring.model=cnn`` chooses an option of the nested group ``scoring/model``, as ``model=cnn`` does."""
    key, _, value = override.partition("=")
    group = key.replace(".", "/")
    if value and not key.startswith(("+", "~", "-")) and "/" in group and group in config_groups():
        return f"{group}={value}"
    return override


def _check_group_choices(overrides: list[str]) -> None:
    """Reject ``group=unknown`` before Hydra composes anything, naming the valid options in one line (a registered
    implementation without a YAML file is an option too: :mod:`datacull.plugins`)."""
    from .plugins import register_with_hydra

    groups = register_with_hydra()
    for override in overrides:
        if override.startswith("-") or "=" not in override:
            continue
        key, value = override.lstrip("+~").split("=", 1)
        if key not in groups or value.startswith(("choice(", "range(", "glob(")):
            continue
        for choice in value.split(","):
            if choice not in ("", "null") and choice not in groups[key]:
                _fail(f"unknown {key} '{choice}'; valid options: {', '.join(groups[key])}")


def _check_composes(overrides: list[str]) -> str | None:
    """Compose the config once (a sweep's first value of each list) so a misspelled key or a malformed value
    fails here in one line, before Hydra starts a run or a sweep. Returns a sweep's folder, resolved as Hydra
    resolves it (from the config without the swept values), so that its jobs' summaries can be read at the end."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    candidates = [arg for arg in overrides if not arg.startswith("-") and ("=" in arg or arg.startswith("~"))]
    multirun = bool({"-m", "--multirun"} & set(overrides))
    try:
        parsed = OverridesParser.create().parse_overrides(candidates)
    except Exception as error:  # hydra's grammar errors
        _fail(_one_line(error))
    first_values, fixed = [], []
    for override in parsed:
        key = override.get_key_element()
        if key.lstrip("+~").startswith("hydra") and override.is_sweep_override():
            continue  # Hydra itself refuses to sweep its own settings
        if override.is_sweep_override():
            if not multirun:
                _fail(f"{override.input_line} lists several values: add -m to run one job per value")
            first_values.append(f"{key}={next(iter(override.sweep_string_iterator()))}")
        else:
            first_values.append(override.input_line)
            fixed.append(override.input_line)
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            _check_keys_are_read(compose, first_values)
            composed = compose(config_name="config", overrides=first_values, return_hydra_config=True)
            # refused here, before Hydra writes .hydra/ and train.log into another run's folder
            folder = Path(str(composed.hydra.sweep.dir if multirun else composed.hydra.run.dir)).expanduser()
            if (
                not multirun and int(os.environ.get("RANK", "0")) == 0
            ):  # other torchrun ranks write a scratch folder
                _refuse_existing_run(folder)
            _refuse_unwritable(folder, "output_dir (DATACULL_OUTPUT_DIR) or hydra.run.dir / hydra.sweep.dir")
            _refuse_unwritable(Path(str(composed.cache_dir)).expanduser(), "cache_dir (DATACULL_CACHE_DIR)")
            if multirun:
                base = compose(config_name="config", overrides=fixed, return_hydra_config=True)
                return str(Path(str(base.hydra.sweep.dir)).expanduser().resolve())
    except typer.Exit:
        raise
    except Exception as error:  # Hydra reports composition problems in several exception types
        message = _one_line(error)
        missing = re.search(r"Could not find 'hydra/launcher/(joblib|submitit_slurm)'", message)
        if missing:
            extra = {"joblib": "joblib", "submitit_slurm": "slurm"}[missing.group(1)]
            message += f' (that launcher needs: pip install "datacull[{extra}]")'
        _fail(message)
    return None


def _refuse_existing_run(run_dir: Path) -> None:
    from .outputs import RunFolder

    try:
        RunFolder(run_dir, writable=False).refuse_existing_run()
    except Exception as error:  # InputError: the folder holds a run
        _fail(str(error))


def _refuse_unwritable(folder: Path, setting: str) -> None:
    """A folder that cannot be created or written (read-only, or a file in its way) is refused before anything
    runs, in one line naming the setting that moves it."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = "not a folder" if not existing.is_dir() else "read-only"
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        _fail(f"{folder} cannot be written ({existing} is {problem}): choose a writable {setting}")


def _check_keys_are_read(compose, overrides: list[str]) -> None:
    """Refuse a key that the chosen component does not read, naming the options that do, and a key that does not
    exist, naming the closest ones (Hydra's own message advises ``+key``, which would silently add it)."""
    import difflib

    from omegaconf import OmegaConf

    groups = config_groups()
    selections, keys = [], []
    for override in overrides:
        key = override.split("=", 1)[0]
        if key.startswith(("+", "~", "hydra.", "hydra/")) or "=" not in override:
            continue
        (keys if "." in key else selections).append(override)
    if not keys:
        return
    base = OmegaConf.to_container(compose(config_name="config", overrides=selections), resolve=False)
    known = sorted(_dotted_keys(base))
    for override in keys:
        key = override.split("=", 1)[0]
        if key in known or any(name.startswith(key + ".") for name in known):
            continue
        group = key.split(".", 1)[0]
        if group in groups:
            chosen = (base.get(group) or {}).get("name", "?")
            readers = [
                option
                for option in groups[group]
                if key.split(".", 1)[1] in _dotted_keys(OmegaConf.to_container(_group_file(group, option)))
            ]
            if readers:
                names = ", ".join(readers[:-1]) + (" and " if len(readers) > 1 else "") + readers[-1]
                _fail(
                    f"{key} is not read by {group}={chosen}; {group}={names} read{'s' if len(readers) == 1 else ''} it"
                )
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        hint = (
            f"; did you mean {' or '.join(close)}?"
            if close
            else "; see `datacull train --cfg job` for the keys"
        )
        _fail(f"{key} does not exist{hint}")


def _dotted_keys(node, prefix: str = "") -> set[str]:
    if not isinstance(node, dict):
        return {prefix[:-1]} if prefix else set()
    keys = {prefix[:-1]} if prefix else set()
    for name, value in node.items():
        if name != "defaults":
            keys |= _dotted_keys(value, f"{prefix}{name}.")
    return keys


def _group_file(group: str, option: str):
    """An option's config: its YAML file, or the node made from its registration."""
    from omegaconf import OmegaConf

    path = config_dir() / group / f"{option}.yaml"
    if path.is_file():
        return OmegaConf.load(path)
    from .plugins import generated_options

    return OmegaConf.create(generated_options().get(group, {}).get(option, {}))


def _one_line(error: BaseException) -> str:
    """Hydra's multi-line messages (and their causes) folded into one line."""
    texts = []
    while error is not None:
        texts.append(str(error))
        error = error.__cause__
    lines = [line.strip() for text in texts for line in text.splitlines() if line.strip()]
    noise = ("full_key:", "object_type", "reference_type", "Config search path:", "provider=")
    lines = [line for line in lines if not line.startswith(noise)]
    return " ".join(lines) or "the configuration does not compose"


def _show_traceback(debug: bool) -> bool:
    return debug or os.environ.get("HYDRA_FULL_ERROR") == "1"


@app.command(
    help=_train_help(),
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def train(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of errors caused by the input."
    ),
) -> None:
    overrides = [_as_group_choice(override) for override in ctx.args]
    _check_group_choices(overrides)
    sweep_dir = _check_composes(overrides)
    from . import hydra_app
    from .distributed import worker_run_overrides
    from .summary import unfinished_runs

    if debug:  # read by the jobs, also where a launcher runs them in other processes
        os.environ["HYDRA_FULL_ERROR"] = "1"
    pinned = [f"hydra.sweep.dir={sweep_dir}"] if sweep_dir else []
    started = time.time()
    try:
        with (
            worker_run_overrides() as extra,
            _argv(["datacull train", *overrides, *pinned, *extra]),
            _root_log_handlers_restored(),
        ):
            hydra_app.main()
    except KeyboardInterrupt:  # the run recorded "interrupted" and logged how to resume it
        raise typer.Exit(code=130) from None
    failed = unfinished_runs(sweep_dir, since=started - 1) if sweep_dir else []
    for job_dir, reason in failed:
        typer.echo(f"error: sweep job {job_dir} failed: {reason}", err=True)
    if failed:
        raise typer.Exit(code=1)


@contextlib.contextmanager
def _root_log_handlers_restored():
    """Hydra's job logging puts a console handler (on the stream of the moment) and the run's log file on the
    root logger, and leaves them there: called in-process (a notebook, a test's CliRunner), a later log line would
    go to a closed stream and to that run's train.log. They are removed and closed when the command returns."""
    before = list(logging.root.handlers)
    try:
        yield
    finally:
        for handler in [handler for handler in logging.root.handlers if handler not in before]:
            logging.root.removeHandler(handler)
            handler.close()
        for handler in before:
            if handler not in logging.root.handlers:
                logging.root.addHandler(handler)


@contextlib.contextmanager
def _argv(argv: list[str]):
    """``sys.argv`` for the block: ``@hydra.main`` reads its arguments there."""
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


@app.command("list")
def list_command() -> None:
    """Every registered importance, sampler, dataset and model, with a one-line description and its paper."""
    from .catalog import list_entries
    from .registry import KINDS

    for kind in KINDS:
        entries = list_entries(kind)
        typer.echo(f"{kind}s ({len(entries)}):")
        width = max(len(entry.name) for entry in entries)
        for entry in entries:
            paper = f"  [{entry.paper}]" if entry.paper else ""
            typer.echo(f"  {entry.name:<{width}}  {entry.description}{paper}")
        typer.echo("")


@app.command()
def resume(
    run_dir: Path = typer.Argument(
        ..., help="A run folder written by `datacull train` (holds config.yaml and checkpoint.pt)."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of errors caused by the input."
    ),
) -> None:
    """Continue an interrupted run from its last checkpoint, with the configuration it was started with."""
    from .errors import DatacullError
    from .runner import resume as resume_run

    try:
        resume_run(run_dir)
    except KeyboardInterrupt:
        raise typer.Exit(code=130) from None
    except DatacullError as error:
        if _show_traceback(debug):
            raise
        _fail(str(error))


@app.command()
def convert(
    folders: list[Path] = typer.Argument(
        ..., help="Trajectory folders written by DataCull 1.0.2's DCLogger (epochN.jsonl files)."
    ),
    num_samples: int | None = typer.Option(
        None, "--num-samples", help="The data set's size (default: the largest logged index + 1)."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of errors caused by the input."
    ),
) -> None:
    """Convert DataCull 1.0.2 trajectories (epochN.jsonl) to this package's epochN.npy, beside them; the .jsonl
    files stay. Readers convert on first use anyway: this does a whole folder ahead of time."""
    from .errors import DatacullError
    from .legacy import convert_folder, legacy_epochs

    for folder in folders:
        try:
            if not legacy_epochs(folder):
                raise DatacullError(f"{folder} holds no DataCull 1.0.2 epochN.jsonl files")
            converted = convert_folder(folder, num_samples)
        except DatacullError as error:
            if _show_traceback(debug):
                raise
            _fail(str(error))
        typer.echo(
            f"{folder}: converted {len(converted)} epoch(s)"
            + ("" if converted else " (all were converted before)")
        )


def _compose(overrides: list[str]):
    """The config of a single run (checked as ``datacull train`` checks it), for the commands that need no Hydra run."""
    from hydra import compose, initialize_config_dir

    from .hydra_app import absolutize_paths

    overrides = [_as_group_choice(override) for override in overrides]
    _check_group_choices(overrides)
    _check_composes(overrides)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    absolutize_paths(cfg)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    return cfg


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def score(
    ctx: typer.Context,
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Folder for scores.npy, labels.npy, scores.json."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of errors caused by the input."
    ),
) -> None:
    """Write an importance's per-sample scores, from its (cached) scoring run: `datacull score importance=aum`.

    Arguments are the same overrides as `datacull train` (the sampler is irrelevant: the scores do not depend on
    it). The scores folder feeds `datacull select`."""
    from .coresets import score_into
    from .errors import DatacullError

    cfg = _compose([*ctx.args, "sampler=topk"])
    if out is None:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        out = (
            Path(cfg.output_dir) / "scores" / f"{stamp}_{cfg.dataset.name}_{cfg.importance.name}_s{cfg.seed}"
        )
    try:
        folder = score_into(cfg, out)
    except DatacullError as error:
        if _show_traceback(debug):
            raise
        _fail(str(error))
    typer.echo(f"wrote {folder}/scores.npy, labels.npy, scores.json")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def select(
    ctx: typer.Context,
    scores: Path = typer.Argument(..., help="A folder written by `datacull score`."),
    sampler: str = typer.Option(
        ..., "--sampler", help="A static sampler: ccs, tdds, topk, random, metriq, full."
    ),
    pruning_rate: float = typer.Option(..., "--pruning-rate", help="The fraction of samples REMOVED."),
    seed: int = typer.Option(0, "--seed", help="The sampler's seed (the runner uses the run's seed)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for indices.npy (and weights.npy)."),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of errors caused by the input."
    ),
) -> None:
    """Write the indices a static sampler keeps from scores: `datacull select SCORES --sampler ccs --pruning-rate
    0.9`; extra arguments set the sampler's parameters (`sampler.beta=0.3`). Load them with
    `datacull.load_selection(folder).subset(dataset)` or `Subset(dataset, numpy.load("indices.npy"))`."""
    from .coresets import read_scores, select_into
    from .errors import DatacullError

    try:
        loaded = read_scores(scores)
        cfg = _compose(
            [f"sampler={sampler}", f"sampler.pruning_rate={pruning_rate}", f"seed={seed}", *ctx.args]
        )
        folder = out or Path(scores) / f"selection_{sampler}_p{pruning_rate:g}_s{seed}"
        selection = select_into(loaded, cfg, folder)
    except DatacullError as error:
        if _show_traceback(debug):
            raise
        _fail(str(error))
    typer.echo(f"kept {selection.indices.size} of {loaded.scores.size}: wrote {folder}/indices.npy")


@app.command()
def report(
    paths: list[Path] | None = typer.Argument(
        None,
        help="Run folders, sweep folders or any folder above them; summary.json files (default: the output "
        "folder, $DATACULL_OUTPUT_DIR or outputs).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Where report.csv/.md/.png go (default: the path itself when it is one folder, else the current folder).",
    ),
    output_format: str = typer.Option(
        "markdown", "--format", help="What to print: markdown (a table) or csv (report.csv, for pipes)."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of errors caused by the input."
    ),
) -> None:
    """Compare runs: mean ± std over seeds per dataset, model, epochs, method and pruning rate, against the full-data
    reference; failed and unfinished runs are listed apart, never averaged."""
    from .errors import DatacullError
    from .report import TABLE_COLUMNS, markdown
    from .report import report as make_report

    if output_format not in ("markdown", "csv"):
        _fail(f"--format must be markdown or csv; got {output_format!r}")
    paths = paths or [Path(os.environ.get("DATACULL_OUTPUT_DIR", "outputs"))]
    if out is None:
        out = paths[0] if len(paths) == 1 and paths[0].is_dir() else Path.cwd()
    try:
        table, failed, notes = make_report(paths, out)
    except DatacullError as error:
        if _show_traceback(debug):
            raise
        _fail(str(error))
    if output_format == "csv":
        typer.echo(table[TABLE_COLUMNS].to_csv(index=False), nl=False)
        if len(failed):
            notes.append(f"{len(failed)} run(s) failed, unfinished or unreadable: see report_failed.csv")
    else:
        typer.echo(markdown(table, failed), nl=False)
    for note in notes:
        typer.echo(note, err=True)


def main() -> None:
    app(prog_name="datacull")
