"""Built-in methods, one file each, registered by name.

The original DataCull's import paths (``datacull.methods.CCS``, ``.TDDS``, ``.MetriQ``, ``.RS2``, ``.RCAP``)
are provided as alias modules rather than files, so that case-insensitive file systems never see
``ccs.py`` and ``CCS.py`` as the same file.
"""

from __future__ import annotations

import sys
import types

from . import (
    aum,
    cartography,
    ccs,
    el2n,
    entropy,
    epsilon_greedy,
    forgetting,
    full,
    grand,
    infobatch,
    least_confidence,
    loss,
    margin,
    metriq,
    random,
    rcap,
    rs2,
    tdds,
    topk,
    ucb,
    uniform,
)

#: Every built-in method module; importing one registers its importances and samplers.
__all__ = [
    "aum",
    "cartography",
    "ccs",
    "el2n",
    "entropy",
    "epsilon_greedy",
    "forgetting",
    "full",
    "grand",
    "infobatch",
    "least_confidence",
    "loss",
    "margin",
    "metriq",
    "random",
    "rcap",
    "rs2",
    "tdds",
    "topk",
    "ucb",
    "uniform",
]

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
