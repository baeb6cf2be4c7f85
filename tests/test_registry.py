"""Registries: lookups, listing, third-party entry points, the conf files <-> registry correspondence, and the
registry kept apart from the implementations (no import circle; the light commands import no torch)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from datacull import catalog, registry
from datacull.data import DCDataLoader
from datacull.errors import UnknownNameError
from datacull.importance import DCImportance
from datacull.paths import config_dir, config_groups


@pytest.mark.parametrize(
    "kind, group",
    [
        ("importance", "importance"),
        ("sampler", "sampler"),
        ("dataset", "dataset"),
        ("model", "model"),
        ("optimizer", "optimizer"),
        ("scheduler", "scheduler"),
    ],
)
def test_every_conf_file_names_a_registered_implementation_and_back(kind, group):
    assert set(config_groups()[group]) == set(catalog.list_names(kind))
    for option in config_groups()[group]:
        text = (config_dir() / group / f"{option}.yaml").read_text()
        assert f"name: {option}\n" in text, f"{group}/{option}.yaml must say name: {option}"


@pytest.mark.parametrize("kind", ["importance", "sampler"])
def test_every_built_in_method_has_its_section_in_the_methods_document(kind):
    """A new method is one file under datacull/methods/ plus its docs/methods.md section; this holds the second."""
    sections = set(
        re.findall(
            r"^## (\S+)$", (Path(__file__).resolve().parents[1] / "docs" / "methods.md").read_text(), re.M
        )
    )
    built_in = {
        entry.name for entry in catalog.list_entries(kind) if entry.obj.__module__.startswith("datacull.")
    }
    assert built_in, kind
    assert built_in <= sections, f"no '## name' section in docs/methods.md for {sorted(built_in - sections)}"


def test_every_file_of_the_methods_package_is_imported_without_being_listed():
    import datacull.methods

    files = {
        path.stem for path in Path(datacull.methods.__file__).parent.glob("*.py") if path.stem != "__init__"
    }
    assert set(datacull.methods.__all__) == files
    assert all(f"datacull.methods.{name}" in sys.modules for name in files)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as raised:
        catalog.get_sampler("cssc")
    message = str(raised.value)
    assert "unknown sampler 'cssc'" in message and "ccs" in message and "\n" not in message


def test_list_filters_by_pattern():
    assert catalog.list_samplers("r*") == sorted(
        name for name in catalog.list_samplers() if name.startswith("r")
    )


def test_registered_objects_name_their_paper_and_describe_themselves():
    for kind in ("importance", "sampler"):
        for entry in catalog.list_entries(kind):
            assert entry.description, f"{kind} {entry.name} has no docstring"
            assert entry.paper, f"{kind} {entry.name} names no paper"


def test_importances_and_samplers_subclass_the_library_bases():
    assert all(issubclass(catalog.get_importance(n), DCImportance) for n in catalog.list_importances())
    assert all(issubclass(catalog.get_sampler(n), DCDataLoader) for n in catalog.list_samplers())


def test_registering_a_second_object_under_a_taken_name_fails():
    class Other(DCDataLoader):
        """Other."""

    with pytest.raises(ValueError, match="already registered"):
        registry.register_sampler("ccs")(Other)


def test_third_party_entry_points_are_loaded(tmp_path, monkeypatch):
    package = tmp_path / "thirdparty_pruning.py"
    package.write_text(
        "from datacull import DCDataLoader, register_sampler\n"
        "@register_sampler('everything_plugin')\n"
        "class Everything(DCDataLoader):\n"
        "    '''Keeps everything.'''\n"
        "    def compute_subset(self, sample_importance):\n"
        "        return list(range(self.total_num_samples))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    class FakeEntryPoint:
        name = "everything_plugin"

        def load(self):
            import thirdparty_pruning

            return thirdparty_pruning

    monkeypatch.setattr(
        catalog, "entry_points", lambda group: [FakeEntryPoint()] if group == "datacull.samplers" else []
    )
    monkeypatch.setattr(catalog, "_plugins_loaded", False)
    try:
        assert "everything_plugin" in catalog.list_samplers()
    finally:
        registry._REGISTRY["sampler"].pop("everything_plugin", None)


def test_the_wheel_carries_the_configs_and_finds_them_installed(tmp_path):
    import subprocess
    import sys
    import zipfile

    builder = pytest.importorskip("hatchling.builders.wheel")
    wheel = next(
        builder.WheelBuilder(str(Path(__file__).resolve().parents[1])).build(
            directory=str(tmp_path), versions=["standard"]
        )
    )
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "datacull/conf/config.yaml" in names and "datacull/conf/sampler/ccs.yaml" in names
        archive.extractall(tmp_path / "site")
    found = subprocess.run(
        [sys.executable, "-c", "from datacull.paths import config_dir; print(config_dir())"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found) == tmp_path / "site" / "datacull" / "conf"


def test_the_registry_imports_no_implementation_and_report_imports_no_torch():
    """Plugins import the registry, the catalog imports the plugins: no circle. ``datacull report`` and ``list``'s
    module layer start without torch."""
    import subprocess
    import sys

    code = (
        "import sys; import datacull.registry, datacull.report, datacull.cli, datacull.summary; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('datacull.methods')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
