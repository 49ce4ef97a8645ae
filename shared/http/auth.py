"""Bearer JWT verification shared by both services (RFC 6750 for the error responses).

The algorithm list is pinned to the one configured algorithm, so a token cannot choose how it is
checked (`alg: none`, or HS256 signed with a public key, are refused). `exp` is required;
`nbf`/`iat` are honoured with a small leeway; `iss`/`aud` are checked when configured. The user id
comes from the `uid` claim (what the original auth service issued) or else `sub`, roles from
`roles`. Routes call `require_user` or `require_role`; the verified principal is cached on the
request scope, so a request decodes its token at most once.

A client sends the same token with every request until it expires, and verifying it costs more
than anything else a cached cart read does (about 100 us of HMAC and JSON here). So each process
remembers the last JWT_CACHE_SIZE tokens that verified (an LRU; 0 turns it off), keyed by the
whole token string, as Envoy's jwt_authn does: only a token that passed every check is kept,
a different string (a forged or altered token) is verified afresh, and `exp` is checked again
on every use. What a hit skips is only work whose answer cannot have changed: the key is fixed
for the life of the process, and `nbf`/`iat` were already in the past.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.requests import HTTPConnection

from shared.config import HMAC_ALGORITHMS, Settings, SettingsError
from shared.http.problems import Forbidden, Unauthorized

REALM = "storefront"
_SCOPE_KEY = "storefront.principal"
# 1 to 255 characters, none of them control characters (they would end up in SQL rows and logs).
_USER_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,255}\Z")

_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "RS": (rsa.RSAPublicKey,),
    "PS": (rsa.RSAPublicKey,),
    "ES": (ec.EllipticCurvePublicKey,),
    "Ed": (ed25519.Ed25519PublicKey,),
}


class Principal(msgspec.Struct, frozen=True):
    """Who is asking: the user id from the token and the roles it grants."""

    user_id: str
    roles: frozenset[str]


def _invalid_token(description: str) -> Unauthorized:
    challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'
    return Unauthorized(description, headers={"WWW-Authenticate": challenge})


def _missing_token() -> Unauthorized:
    # RFC 6750 3.1: a request with no credentials gets a challenge without an error code.
    return Unauthorized(
        "This endpoint needs a bearer token in the Authorization header.",
        headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
    )


def _load_public_key(algorithm: str, path: str) -> Any:
    try:
        key = load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise SettingsError(
            "JWT_PUBLIC_KEY_FILE", f"cannot load a PEM public key from {path}: {exc}"
        ) from None
    if not isinstance(key, _KEY_TYPES[algorithm[:2]]):
        raise SettingsError(
            "JWT_PUBLIC_KEY_FILE", f"holds a {type(key).__name__}, which {algorithm} cannot use"
        )
    return key


class TokenVerifier:
    """Checks bearer tokens against the configured key and claims."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._algorithms = [settings.jwt_algorithm]
        if settings.jwt_algorithm in HMAC_ALGORITHMS:
            self._key: Any = settings.jwt_secret
        else:
            if settings.jwt_public_key_file is None:  # config validation refuses this already
                raise SettingsError(
                    "JWT_PUBLIC_KEY_FILE", f"is required with JWT_ALGORITHM={settings.jwt_algorithm}"
                )
            # Parsed once here: parsing PEM on every request would cost more than verifying.
            self._key = _load_public_key(settings.jwt_algorithm, settings.jwt_public_key_file)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._options: dict[str, Any] = {
            "require": ["exp"],
            # "Checked when configured": with no audience set, an `aud` claim is not an error.
            "verify_aud": settings.jwt_audience is not None,
        }
        self._clock = clock
        # lru_cache keeps only what returned: a token that failed a check raised, so is not kept.
        self._verified = functools.lru_cache(maxsize=settings.jwt_cache_size)(self._verify)

    def verify(self, token: str) -> Principal:
        principal, valid_until = self._verified(token)
        if self._clock() >= valid_until:  # a remembered token that has expired since
            raise _invalid_token("The token has expired")
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        """The token's principal and when it stops being accepted; raises if it is not valid."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                options=self._options,  # type: ignore[arg-type]
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise _invalid_token("The token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _invalid_token("The token is not valid yet") from None
        except jwt.InvalidAlgorithmError:
            raise _invalid_token(
                "The token is signed with an algorithm this service does not accept"
            ) from None
        except jwt.InvalidSignatureError:
            raise _invalid_token("The token signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _invalid_token(f"The token has no {exc.claim} claim") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise _invalid_token("The token was issued for another audience or by another issuer") from None
        except jwt.InvalidTokenError:
            raise _invalid_token("The token is malformed") from None
        # PyJWT refuses a token once exp <= now - leeway (and has checked exp is a number).
        return _principal(claims), int(claims["exp"]) + self._leeway


def _principal(claims: dict[str, Any]) -> Principal:
    user_id = claims.get("uid", claims.get("sub"))
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not _USER_ID.match(user_id):
        raise _invalid_token("The token has no usable uid or sub claim")
    roles = claims.get("roles", [])
    if isinstance(roles, str):  # OAuth-style space-separated list
        roles = roles.split()
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise _invalid_token("The token's roles claim must be a list of strings")
    return Principal(user_id=user_id, roles=frozenset(roles))


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token from `Authorization: Bearer <token>`, None when no bearer credentials are sent."""
    header = conn.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token or " " in token:
        raise _invalid_token("The Authorization header is not of the form 'Bearer <token>'")
    return token


def verified_principal(conn: HTTPConnection) -> Principal | None:
    """The caller if the request carries a valid token, else None; never raises. (The rate
    limiter keys on it; the route's `require_user` then reuses the cached result.)"""
    try:
        return require_user(conn)
    except Unauthorized:
        return None


def require_user(conn: HTTPConnection) -> Principal:
    """The verified caller; 401 when the token is missing or invalid."""
    cached = conn.scope.get(_SCOPE_KEY)
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(conn)
    if token is None:
        raise _missing_token()
    verifier: TokenVerifier = conn.app.state.token_verifier
    principal = verifier.verify(token)
    conn.scope[_SCOPE_KEY] = principal
    return principal


def require_role(conn: HTTPConnection, role: str) -> Principal:
    """The verified caller holding `role`; 401 without a valid token, 403 without the role."""
    principal = require_user(conn)
    if role not in principal.roles:
        challenge = f'Bearer realm="{REALM}", error="insufficient_scope", scope="{role}"'
        raise Forbidden(f"This action needs the {role!r} role.", headers={"WWW-Authenticate": challenge})
    return principal
