"""The one error family users see. Each subclass is a failure a user can act on;
its message says what to do."""

from __future__ import annotations


class CastkeepError(Exception):
    """Base of every error castkeep raises on purpose. `exit_code` is what the CLI returns."""

    exit_code: int = 2


class ConfigurationError(CastkeepError):
    """A setting is missing or wrong; the message names the CASTKEEP_ variable to fix."""


class ModelNotConfiguredError(ConfigurationError):
    """Weights for a model are not configured or not found at the configured local path."""


class UnknownModelError(CastkeepError):
    """A registry was asked for a name it does not know; the message lists the known ones."""


class InfrastructureError(CastkeepError):
    """A service castkeep depends on is unavailable (database, object store, disk, Prefect API);
    the message names what failed and the setting or path to check. Nothing was half-written."""

    exit_code = 5


class DatabaseError(InfrastructureError):
    """The catalogue cannot be reached, or stopped answering mid-run (the server is down)."""


class DatabaseConfigurationError(DatabaseError, ConfigurationError):
    """The catalogue's settings are wrong (not a PostgreSQL URL, credentials refused, no such
    database, no pgvector): fixing the setting fixes it, waiting does not."""

    exit_code = 2


class ObjectNotFoundError(CastkeepError):
    """An object store key does not exist."""


class ObjectStoreError(InfrastructureError):
    """The object store cannot be reached or refused an operation."""


class NotFoundError(CastkeepError):
    """A catalogue entity (talent, consent, asset, request) does not exist."""


class UnsupportedImageError(CastkeepError):
    """An image cannot be decoded safely (corrupt, truncated, too many pixels, unknown format)."""


class FaceError(CastkeepError):
    """Face detection did not give what the operation needs (no face, several, too small)."""

    exit_code = 3


class NoFaceError(FaceError):
    """No face was found."""


class MultipleFacesError(FaceError):
    """More faces than the operation can use; the message says how to choose one."""


class FaceTooSmallError(FaceError):
    """The face is below the minimum size or quality."""


class IdentityError(FaceError):
    """A portrait's face disagrees with the talent its manifest names: it does not look like that
    talent's references, or it matches another talent's (the message names that talent and how
    to declare the relationship, same person or lookalike, in the consent manifest)."""


class EncoderMismatchError(CastkeepError):
    """Embeddings of different encoders were compared; they live in different spaces."""


class ManifestError(CastkeepError):
    """A consent manifest or request file is invalid; the message names the file and field."""


class ConsentError(CastkeepError):
    """Consent does not cover the requested use; the message names every failing clause."""

    exit_code = 3


class LicenceError(CastkeepError):
    """A model's licence forbids the requested use unless a licence id is configured."""

    exit_code = 3


class SpecError(CastkeepError):
    """A lighting or camera spec is invalid or beyond what an engine can do."""


class EngineError(CastkeepError):
    """An edit engine failed while running."""


class SigningError(CastkeepError):
    """A C2PA manifest could not be signed; the message says which key/cert property is wrong."""


class VerificationError(CastkeepError):
    """A file's provenance could not be read at all."""


class WithdrawnError(CastkeepError):
    """The asset is withdrawn (quarantined or rejected) in the catalogue: it must not be used."""

    exit_code = 4


class ApprovalError(CastkeepError):
    """The approval does not fit the request's state (wrong status, unknown or failing asset)."""


class ConsentStateError(CastkeepError):
    """A revocation request is incomplete (e.g. no reason given)."""


class Refused(CastkeepError):
    """A gate refused the request (consent or licence): an outcome recorded on the request, and
    never retried."""

    exit_code = 3

    def __init__(self, refusals: list[str], kind: str) -> None:
        super().__init__("; ".join(refusals))
        self.refusals = refusals
        self.kind = kind  # consent | licence


class AccountError(CastkeepError):
    """A user or token command does not fit the accounts (unknown user, duplicate name, bad role)."""


class SignInRefused(AccountError):
    """The identity provider signed the person in, but castkeep will not (disabled, unknown,
    no mapped role)."""


class RequestFormError(SpecError):
    """A value of the web request form cannot make a request; the message names the field and
    what to enter."""
