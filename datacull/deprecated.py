"""Settings renamed so that one concept has one name (class balancing is ``class_balanced`` everywhere, a score's
direction ``higher_is_harder``). The old names keep working for one release, with a warning (DataCull 1.0.2's own
keywords without one); the report reads old run folders under the new names.

The report imports this module, so it imports neither torch nor the methods.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

log = logging.getLogger("datacull")

#: Config keys renamed in 2.0: old -> new. A run folder written under the old name is compared as the new one.
RENAMED_KEYS = {
    "sampler.stratified": "sampler.class_balanced",  # random
    "sampler.stratify": "sampler.class_balanced",  # rs2 (1.0.2's keyword stays accepted; its folders read as new)
    "sampler.descending": "sampler.higher_is_harder",  # the ranking samplers (1.0.2's CCS keyword stays accepted)
}


def renamed(
    owner: str,
    old: str,
    old_value: Any,
    new: str,
    new_value: Any,
    concept: str = "class balancing across samplers",
    quiet: bool = False,
) -> Any:
    """The value of setting ``new``, given under its old name ``old`` (None: not given) or its new one. The old
    name warns once per call site (FutureWarning, shown to end users) and in the run's log, unless ``quiet`` (a
    DataCull 1.0.2 keyword, which its users' code keeps)."""
    if old_value is None:
        return new_value
    if quiet:
        return old_value
    message = (
        f"{owner}: {old}= is the old name of {new}= (one name for {concept}); it still works in this release and "
        "will be removed in the next"
    )
    warnings.warn(message, FutureWarning, stacklevel=3)
    log.warning(message)
    return old_value
