"""Built-in methods, one file each, registered by name when this package imports them all.

The original DataCull's import paths (``datacull.methods.CCS``, ``.TDDS``, ``.MetriQ``, ``.RS2``, ``.RCAP``)
are provided as alias modules rather than files, so that case-insensitive file systems never see
``ccs.py`` and ``CCS.py`` as the same file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import types

#: Every built-in method module, found by listing the package: a new method is one file here (plus its
#: docs/methods.md section), registered when this package is imported.
__all__ = sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
for _module_name in __all__:
    importlib.import_module(f"{__name__}.{_module_name}")

from . import aum, ccs, metriq, rcap, rs2, tdds  # noqa: E402  (the original's paths below name them)

_ORIGINAL_PATHS = {
    "CCS": (ccs.CCSDataLoader, aum.AUMImportance),
    "TDDS": (tdds.TDDSImportance, tdds.TDDSDataLoader),
    "MetriQ": (metriq.MetriQDataLoader,),
    "RS2": (rs2.RS2DataLoader,),
    "RCAP": (rcap.RCAPImportance, rcap.RCAPDataLoader),
}

for _name, _objects in _ORIGINAL_PATHS.items():
    _module = types.ModuleType(
        f"{__name__}.{_name}",
        f"The original DataCull import path for {', '.join(o.__name__ for o in _objects)}.",
    )
    for _object in _objects:
        setattr(_module, _object.__name__, _object)
    _module.__all__ = [o.__name__ for o in _objects]
    sys.modules[_module.__name__] = _module
    globals()[_name] = _module
