"""Where the Hydra configs live, resolved in one place.

A wheel carries them as ``datacull/conf`` (see pyproject's force-include); a source checkout or an
editable install reads the top-level ``conf/`` beside the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"datacull's conf/ folder was not found next to {_PACKAGE_DIR}; reinstall the package"
    )


def config_groups() -> dict[str, list[str]]:
    """Each config group and its options (yaml file stems), e.g. ``{"sampler": ["ccs", "rcap", ...]}``; nested
    groups by their path (``"scoring/model"``)."""
    root = config_dir()
    groups = {}
    for folder in sorted(path for path in root.rglob("*") if path.is_dir()):
        name = folder.relative_to(root).as_posix()
        options = sorted(path.stem for path in folder.glob("*.yaml"))
        if options and name.split("/")[0] != "hydra":
            groups[name] = options
    return groups
