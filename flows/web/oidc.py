"""The OpenID Connect client of castkeep web's single sign-on, on authlib (OAuth 2 client: PKCE,
client authentication, code exchange) and joserfc (JWS): provider discovery, the authorization
URL (code flow, PKCE S256, state, nonce), the code exchange, ID token validation (signature
against the provider's JWKS with asymmetric algorithms only; issuer, audience, azp, nonce,
expiry, at_hash), userinfo when the ID token lacks a configured claim, and the castkeep
username, roles and team read from the claims.

Everything from the provider is checked before use. The client secret, codes and tokens are
never logged (the secret is a SecretStr even in this module's reprs).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from castkeep.errors import ConfigurationError
from castkeep.flows.settings import OidcSettings
from castkeep.flows.web.problems import Problem
from castkeep.tasks.sso_accounts import SignInRefused, check_username
from castkeep.vocab import Role

logger = logging.getLogger(__name__)

# Never "none" and never HMAC: a key from the JWKS is public, so only asymmetric signatures count.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA"]
LEEWAY_S = 60
METADATA_TTL_S = 3600
TIMEOUT_S = 10
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_ENV = "CASTKEEP_WEB__OIDC__"


def _transport_ok(url: str) -> bool:
    """https, or http to a loopback host (a provider on the same machine, as in tests)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)


@dataclass(frozen=True)
class OidcConfig:
    """The checked OIDC settings."""

    issuer: str
    client_id: str
    client_secret: SecretStr
    scopes: str
    username_claim: str
    roles_claim: str
    role_map: dict[str, tuple[str, ...]]
    team_claim: str
    create_users: bool
    redirect_uri: str

    @classmethod
    def from_settings(cls, oidc: OidcSettings) -> OidcConfig | None:
        """The configuration, None when single sign-on is off (no issuer), or a
        ConfigurationError naming the variable to fix."""
        if not oidc.issuer:
            return None
        if not _transport_ok(oidc.issuer):
            raise ConfigurationError(f"{_ENV}ISSUER must be an https URL (http only on loopback)")
        if not oidc.client_id:
            raise ConfigurationError(f"{_ENV}CLIENT_ID is empty; set the client id registered "
                                     "with the identity provider")
        if "openid" not in oidc.scopes.split():
            raise ConfigurationError(f"{_ENV}SCOPES must include openid")
        if oidc.redirect_uri and not _transport_ok(oidc.redirect_uri):
            raise ConfigurationError(f"{_ENV}REDIRECT_URI must be an https URL (http only on "
                                     "loopback)")
        known = {r.value for r in Role}
        for value, roles in oidc.role_map.items():
            unknown = sorted(set(roles) - known)
            if unknown:
                raise ConfigurationError(f"{_ENV}ROLE_MAP maps {value!r} to unknown role(s) "
                                         f"{', '.join(unknown)}; roles are {', '.join(sorted(known))}")
        return cls(issuer=oidc.issuer, client_id=oidc.client_id,
                   client_secret=oidc.client_secret, scopes=oidc.scopes,
                   username_claim=oidc.username_claim, roles_claim=oidc.roles_claim,
                   role_map={k: tuple(v) for k, v in oidc.role_map.items()},
                   team_claim=oidc.team_claim, create_users=oidc.create_users,
                   redirect_uri=oidc.redirect_uri)


@dataclass(frozen=True)
class Pending:
    """What the callback needs from the sign-in it completes (kept in a signed cookie)."""

    state: str
    nonce: str
    verifier: str
    next_path: str


def _refused(detail: str) -> Problem:
    return Problem(401, detail, title="Single sign-on failed")


class OidcClient:
    """One provider, one client registration; discovery and keys cached, thread-safe."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._jwks: dict[str, Any] | None = None
        logger.info("single sign-on: issuer %s, client %s, roles from claim %s",
                    config.issuer, config.client_id, config.roles_claim)

    # --- the provider's documents --------------------------------------------------------------

    def _get_json(self, url: str, what: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            answer = httpx.get(url, timeout=TIMEOUT_S, follow_redirects=False, **kwargs)
        except httpx.HTTPError as exc:
            raise Problem(502, f"the identity provider did not answer ({what}): "
                          f"{type(exc).__name__}") from None
        if answer.status_code != 200:
            raise Problem(502, f"the identity provider answered {answer.status_code} ({what})")
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Problem(502, f"the identity provider's {what} is not a JSON object")
        return body

    def metadata(self) -> dict[str, Any]:
        """The discovery document, checked: its issuer is ours and its endpoints are https."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._fetched_at < METADATA_TTL_S:
                return self._metadata
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json(url, "discovery document")
        if doc.get("issuer") != self.config.issuer:
            raise ConfigurationError(f"the discovery document names the issuer "
                                     f"{str(doc.get('issuer'))[:200]!r}, not {_ENV}ISSUER "
                                     f"{self.config.issuer!r}; set it to the provider's issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(name), str) or not _transport_ok(doc[name]):
                raise Problem(502, f"the identity provider's {name} is missing or not https")
        if doc.get("userinfo_endpoint") is not None and not (
                isinstance(doc["userinfo_endpoint"], str) and _transport_ok(doc["userinfo_endpoint"])):
            raise Problem(502, "the identity provider's userinfo_endpoint is not https")
        with self._lock:
            self._metadata, self._fetched_at, self._jwks = doc, time.monotonic(), None
        return doc

    def _key_set(self, refresh: bool = False):
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        with self._lock:
            jwks = None if refresh else self._jwks
        if jwks is None:
            jwks = self._get_json(self.metadata()["jwks_uri"], "key set")
            with self._lock:
                self._jwks = jwks
        try:
            return KeySet.import_key_set(jwks)
        except (JoseError, ValueError, KeyError, TypeError):  # a malformed set, in several ways
            raise Problem(502, "the identity provider's key set cannot be read") from None

    # --- the flow --------------------------------------------------------------------------------

    def _oauth(self, redirect_uri: str):
        from authlib.integrations.httpx_client import OAuth2Client

        methods = self.metadata().get("token_endpoint_auth_methods_supported")
        auth = ("client_secret_post" if isinstance(methods, list)
                and "client_secret_basic" not in methods and "client_secret_post" in methods
                else "client_secret_basic")
        return OAuth2Client(client_id=self.config.client_id,
                            client_secret=self.config.client_secret.get_secret_value(),
                            scope=self.config.scopes, redirect_uri=redirect_uri,
                            code_challenge_method="S256", token_endpoint_auth_method=auth,
                            timeout=TIMEOUT_S, follow_redirects=False)

    def authorization_url(self, redirect_uri: str, next_path: str) -> tuple[str, Pending]:
        """Where to send the browser, and what its callback must match."""
        pending = Pending(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                          verifier=secrets.token_urlsafe(64), next_path=next_path)
        with self._oauth(redirect_uri) as oauth:
            url, _ = oauth.create_authorization_url(
                self.metadata()["authorization_endpoint"], state=pending.state,
                code_verifier=pending.verifier, nonce=pending.nonce)
        return url, pending

    def exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token response for an authorization code (sent with the PKCE verifier)."""
        import httpx
        from authlib.common.errors import AuthlibBaseError

        with self._oauth(redirect_uri) as oauth:
            try:
                token = oauth.fetch_token(self.metadata()["token_endpoint"], code=code,
                                          code_verifier=verifier,
                                          grant_type="authorization_code")
            except AuthlibBaseError as exc:
                raise _refused("the identity provider refused the code exchange "
                               f"({error_code(getattr(exc, 'error', None))})") from None
            except httpx.HTTPError as exc:
                raise Problem(502, "the identity provider did not answer the code exchange: "
                              f"{type(exc).__name__}") from None
        if not isinstance(token.get("id_token"), str) or not isinstance(
                token.get("access_token"), str):
            raise _refused("the identity provider's token response has no ID token")
        return dict(token)

    def verify_id_token(self, token: dict[str, Any], nonce: str,
                        now: int | None = None) -> dict[str, Any]:
        """The ID token's claims once its signature (provider JWKS), issuer, audience, azp,
        nonce, expiry and at_hash check out; 401 otherwise."""
        from authlib.oidc.core import CodeIDToken
        from joserfc import jwt
        from joserfc.errors import InvalidKeyIdError, JoseError
        from joserfc.jws import JWSRegistry

        registry = JWSRegistry(algorithms=ALGORITHMS)
        try:
            try:
                decoded = jwt.decode(token["id_token"], self._key_set(), registry=registry)
            except InvalidKeyIdError:  # the provider may have rotated its keys
                decoded = jwt.decode(token["id_token"], self._key_set(refresh=True),
                                     registry=registry)
            claims = CodeIDToken(
                decoded.claims, decoded.header,
                {"iss": {"essential": True, "value": self.config.issuer},
                 "aud": {"essential": True, "value": self.config.client_id},
                 "nonce": {"essential": True}},
                {"nonce": nonce, "client_id": self.config.client_id,
                 "access_token": token["access_token"]})
            claims.validate(now=now, leeway=LEEWAY_S)
        except (JoseError, ValueError) as exc:
            raise _refused(f"the ID token is not valid: {_why(exc)}") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise _refused("the ID token names no subject")
        return dict(claims)

    def _userinfo(self, access_token: str, sub: str) -> dict[str, Any]:
        endpoint = self.metadata().get("userinfo_endpoint")
        if not endpoint:
            return {}
        info = self._get_json(endpoint, "userinfo",
                              headers={"Authorization": f"Bearer {access_token}"})
        if info.get("sub") != sub:  # OIDC Core 5.3.2: else the answer is not about this user
            raise _refused("the identity provider's userinfo is about another subject")
        return info

    def claims(self, pending: Pending, code: str, redirect_uri: str) -> dict[str, Any]:
        """The signed-in person's claims: the ID token's, completed from userinfo when it lacks
        a claim castkeep reads (ID token claims win)."""
        token = self.exchange(code, pending.verifier, redirect_uri)
        claims = self.verify_id_token(token, pending.nonce)
        wanted = [c for c in (self.config.username_claim, self.config.roles_claim,
                              self.config.team_claim) if c]
        if any(_claim(claims, name) is None for name in wanted):
            claims = {**self._userinfo(token["access_token"], claims["sub"]), **claims}
        return claims

    # --- what castkeep reads from the claims ---------------------------------------------------

    def username(self, claims: dict[str, Any]) -> str:
        value = _claim(claims, self.config.username_claim)
        if value is None:
            raise SignInRefused(f"the identity provider sent no {self.config.username_claim} "
                                f"claim; set {_ENV}USERNAME_CLAIM to the claim naming users")
        return check_username(value)

    def roles(self, claims: dict[str, Any]) -> list[str]:
        """castkeep roles from the roles claim: through ROLE_MAP when set, else the values that
        are castkeep role names; unknown values are ignored."""
        raw = _claim(claims, self.config.roles_claim)
        if raw is None:
            values: list[str] = []
        elif isinstance(raw, str):
            values = [v for v in re.split(r"[\s,]+", raw) if v]
        elif isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            values = raw
        else:
            raise SignInRefused(f"the identity provider's {self.config.roles_claim} claim is "
                                "not a list of strings")
        known = {r.value for r in Role}
        found: set[str] = set()
        for value in values:
            if self.config.role_map:
                found.update(self.config.role_map.get(value, ()))
            elif value in known:
                found.add(value)
        return sorted(found)

    def team(self, claims: dict[str, Any]) -> str | None:
        if not self.config.team_claim:
            return None
        value = _claim(claims, self.config.team_claim)
        if value is None:
            return None
        if (not isinstance(value, str) or not value or len(value) > 100
                or not value.isprintable()):
            raise SignInRefused(f"the identity provider's {self.config.team_claim} claim is not a "
                                "team name (1-100 printable characters)")
        return value


def _claim(claims: dict[str, Any], name: str) -> Any:
    """A claim by name, else by dotted path into nested objects (realm_access.roles)."""
    if name in claims:
        return claims[name]
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def error_code(value: object) -> str:
    """An OAuth error code fit to show (RFC 6749 codes are a small ASCII set)."""
    text = str(value or "")
    return text if re.fullmatch(r"[a-z_]{1,64}", text) else "unrecognised error"


def _why(exc: Exception) -> str:
    text = getattr(exc, "description", None) or getattr(exc, "error", None) or type(exc).__name__
    return str(text)[:200]
