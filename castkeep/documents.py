"""Reading the YAML/JSON documents people hand to castkeep (request files, consent manifests).

Such a document is input from outside, so it is read defensively: its size is capped before it
is parsed, YAML anchors and aliases are refused (a few hundred bytes of nested aliases expand to
gigabytes: the "billion laughs" bomb), only YAML's safe tags are accepted, and nesting too deep
for the parser is an error rather than a crash. Every error is a ManifestError naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from castkeep.errors import ManifestError

MAX_DOCUMENT_BYTES = 1 << 20  # 1 MiB: far above any real request or consent manifest

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)


def read_document(path: Path | str, *, what: str) -> bytes:
    """A document file's bytes, refusing one over MAX_DOCUMENT_BYTES before reading it all.
    `what` names the kind of file in messages ("request file", "consent manifest")."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(f"{path}: {what} not found; check the path") from None
    except IsADirectoryError:
        raise ManifestError(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    check_size(data, str(path), what=what)
    return data


def check_size(data: bytes, source: str, *, what: str) -> None:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ManifestError(
            f"{source}: the {what} is larger than {MAX_DOCUMENT_BYTES // 1024} KiB; a {what} "
            "holds a few fields, not data: remove what does not belong in it"
        )


def _refuse_aliases(text: str, source: str) -> None:
    """Scan the event stream (no values are built) and stop at the first anchor or alias."""
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent) or (
            isinstance(event, _NODE_EVENTS) and event.anchor is not None
        ):
            line = event.start_mark.line + 1 if event.start_mark else "?"
            raise ManifestError(
                f"{source}: line {line}: YAML anchors and aliases (&name, *name, <<: *name) are "
                "not allowed; write each value out in full"
            )


def parse_document(data: bytes | str, source: str, *, what: str) -> Any:
    """Parse a document: JSON when `source` ends in .json, else YAML (which also reads JSON).
    Raises ManifestError naming `source` for oversized, non-UTF-8 or unparseable input and for
    any YAML anchor or alias."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    check_size(data, source, what=what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{source}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    try:
        if source.lower().endswith(".json"):
            return json.loads(text)
        _refuse_aliases(text, source)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ManifestError(f"{source}: cannot parse: not valid YAML/JSON ({exc})") from None
    except RecursionError:
        raise ManifestError(
            f"{source}: values are nested too deeply to read; flatten the {what}"
        ) from None
