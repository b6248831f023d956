"""The few settings that read-only commands need, taken from the environment without Settings.

Building Settings (flows/settings.py: pydantic-settings and every section's model) costs a
short command such as `castkeep talent list` about a third of its run time. `talent list`,
`request show` and `verify` need only the data dir, the database URL, the store's kind and
group, and the trust anchors. This reads them as Settings does (prefix CASTKEEP_, sections nested with `__`,
names in any case) and answers None whenever the environment uses a form it does not read, so
the caller builds Settings instead (which also reports a bad value in castkeep's words).
tests/unit/test_read_settings.py holds both readers to the same answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_PREFIX = "castkeep_"
# Sections given whole as JSON (CASTKEEP_DATABASE='{"url": ...}') are merged by pydantic-settings
# with their `__` keys; rather than repeat that merge, leave such environments to Settings.
_WHOLE_SECTIONS = ("database", "storage", "signing")
_STORE_KINDS = ("filesystem", "s3")


@dataclass(frozen=True)
class ReadSettings:
    home: Path
    database_url: str  # empty: the bundled server of `home`
    storage_kind: str
    storage_group: str  # the filesystem store's reader group (it sets modes by it)
    trust_anchors: tuple[Path, ...]


def read_settings(environ: Mapping[str, str] | None = None) -> ReadSettings | None:
    """The read commands' settings, or None when only Settings can read this environment."""
    env = {k.lower(): v for k, v in (os.environ if environ is None else environ).items()
           if k.lower().startswith(_PREFIX)}
    if any(_PREFIX + s in env for s in _WHOLE_SECTIONS):
        return None
    home = env.get(_PREFIX + "home")
    kind = env.get(_PREFIX + "storage__kind", "filesystem")
    anchors = env.get(_PREFIX + "signing__trust_anchors")
    if home == "" or kind not in _STORE_KINDS:
        return None
    if anchors is not None:
        try:
            anchors = json.loads(anchors)
        except ValueError:
            return None
        if not isinstance(anchors, list) or not all(isinstance(a, str) and a for a in anchors):
            return None
    if home is None:
        import platformdirs

        home_path = platformdirs.user_data_path("castkeep")
    else:
        home_path = Path(home)
    return ReadSettings(
        home=home_path,
        database_url=env.get(_PREFIX + "database__url", ""),
        storage_kind=kind,
        storage_group=env.get(_PREFIX + "storage__group", ""),
        trust_anchors=tuple(Path(a) for a in anchors or ()),
    )
