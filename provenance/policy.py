"""Consent policy: does a consent cover a use, and if not, every clause that fails.

A refusal names each failing clause so a reviewer can see at once what is missing
("territory JP not in consent c-... scope [DE, FR]"). Revoked, expired or not-yet-valid consent
refuses everything; the scope clauses are still listed so the whole picture is visible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from castkeep.provenance.consent import WORLD, ConsentTerms


@dataclass(frozen=True)
class Use:
    """One intended use of a likeness."""

    channel: str
    territory: str
    purpose: str
    edits: tuple[str, ...] = ()
    synthetic_likeness: bool = False
    ai_training: bool = False

    def __post_init__(self) -> None:
        # Normalise so "fr" and "FR" mean the same territory; edits as a tuple for hashing.
        object.__setattr__(self, "territory", self.territory.strip().upper())
        object.__setattr__(self, "channel", self.channel.strip().lower())
        object.__setattr__(self, "purpose", self.purpose.strip().lower())
        object.__setattr__(self, "edits", tuple(self.edits))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.allowed


def _fmt(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(values) + "]"


def _utc(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at


def validity_reasons(terms: ConsentTerms, at: dt.datetime) -> list[str]:
    """Status and date clauses only (whether the consent is in force at `at`)."""
    at = _utc(at)
    reasons = []
    if terms.status == "revoked":
        reasons.append(f"consent {terms.id} is revoked")
    elif terms.status == "expired" or at > terms.valid_until:
        reasons.append(
            f"consent {terms.id} expired on {terms.valid_until.isoformat()} "
            f"(checked at {at.isoformat()})"
        )
    if at < terms.valid_from:
        reasons.append(
            f"consent {terms.id} is not valid until {terms.valid_from.isoformat()} "
            f"(checked at {at.isoformat()})"
        )
    return reasons


def evaluate(terms: ConsentTerms, use: Use, at: dt.datetime) -> Decision:
    """Every clause of `terms` that `use` at time `at` fails; allowed only when none fails."""
    reasons = validity_reasons(terms, at)
    cid = terms.id
    if use.channel not in terms.channels:
        reasons.append(
            f"channel {use.channel} not in consent {cid} scope {_fmt(terms.channels)}"
        )
    if WORLD not in terms.territories and use.territory not in terms.territories:
        reasons.append(
            f"territory {use.territory} not in consent {cid} scope {_fmt(terms.territories)}"
        )
    if use.purpose not in terms.purposes:
        reasons.append(
            f"purpose {use.purpose} not in consent {cid} scope {_fmt(terms.purposes)}"
        )
    for edit in use.edits:
        if edit not in terms.edits:
            reasons.append(
                f"edit {edit} not allowed by consent {cid} (allowed edits {_fmt(terms.edits)})"
            )
    if use.synthetic_likeness and not terms.synthetic_likeness:
        reasons.append(f"synthetic likeness needed but not granted by consent {cid}")
    if use.ai_training and not terms.ai_training:
        reasons.append(f"AI training needed but not granted by consent {cid}")
    return Decision(allowed=not reasons, reasons=reasons)


# Engines that transform the photograph itself (relight, reframe, montage); every other engine
# synthesises a new image of the person, which needs the consent's synthetic-likeness grant.
PHOTOGRAPHIC_ENGINES = frozenset({"classical"})


def use_of(spec) -> Use:
    """The use a request (a RequestSpec) asks consent for."""
    return Use(
        channel=spec.channel,
        territory=spec.territory,
        purpose=spec.purpose,
        edits=spec.edit_kinds(),
        synthetic_likeness=spec.engine not in PHOTOGRAPHIC_ENGINES,
    )


def use_record(spec) -> dict:
    """The use an asset was made for, as the catalogue records it (audits re-check it)."""
    return {
        "channel": spec.channel,
        "territory": spec.territory,
        "purpose": spec.purpose,
        "edits": list(spec.edit_kinds()),
        "synthetic_likeness": spec.engine not in PHOTOGRAPHIC_ENGINES,
        "publish_date": spec.publish_date.isoformat(),
    }
