"""Typed settings read once from environment variables, validated before anything starts.

Each service subclasses `Settings` (adding its own fields and defaults) and calls
`load_settings`. A missing or bad value raises `SettingsError` naming the variable, which the
entry points print as one line before exiting. Field names map to variables in upper case:
`database_url` is `DATABASE_URL`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import msgspec

from shared.ratelimit.groups import RATE_LIMIT_GROUPS
from shared.ratelimit.spec import parse_limits, parse_networks

# Long enough to pass the length check, so that only the explicit "development secret" rule
# stops it in production, with a message that says exactly that.
DEV_JWT_SECRET = "storefront-development-secret-do-not-use-in-production"
MIN_SECRET_BYTES = 32

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PoolSize = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class SettingsError(Exception):
    """A setting is missing or invalid; str() is the one line to print."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"configuration error: {variable}: {problem}")
        self.variable = variable


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper", forbid_unknown_fields=True):
    """What every storefront process reads. Services subclass it."""

    # Secure by default: a deployment that forgets ENV gets production's checks, not a
    # development secret anyone can read in this file. The scripts set ENV=development.
    env: Literal["development", "test", "production"] = "production"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    host: str = "127.0.0.1"
    port: Port = 8000

    database_url: str = "postgresql://postgres@127.0.0.1:5432/storefront"
    database_pool_min: PoolSize = 1
    database_pool_max: PoolSize = 10
    database_command_timeout: Seconds = 10.0
    # The second pool, for reads that need no transaction (shared.storage.postgres.ReadPool):
    # the catalog's public reads, the cart and wishlist pages. Its statements are cancelled
    # by the server after DATABASE_READ_TIMEOUT, so no anonymous request holds a connection.
    database_read_pool_max: PoolSize = 10
    database_read_timeout: Seconds = 2.0

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,32}\Z")] = "storefront"
    redis_max_connections: PoolSize = 64
    redis_socket_timeout: Seconds = 1.0
    redis_connect_timeout: Seconds = 1.0
    # REDIS_URL names any node of a Redis Cluster (shared.storage.redis_conn); keys get hash tags.
    redis_cluster: bool = False
    # Other nodes of the cluster to discover it from ("host:port,host:port"), should REDIS_URL's
    # node be down when a process starts.
    redis_cluster_nodes: Annotated[
        str, msgspec.Meta(pattern=r"^([^,:\s]+:\d{1,5}(,[^,:\s]+:\d{1,5})*)?\Z")
    ] = ""
    # Streams the catalog's events are spread over, by aggregate (shared.events.partitions).
    stream_partitions: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1

    jwt_algorithm: str = "HS256"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_public_key_file: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: Annotated[int, msgspec.Meta(ge=0, le=300)] = 30
    # Verified tokens each process remembers (shared.http.auth); 0 verifies every request afresh.
    jwt_cache_size: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 4096

    # Browsers (shared.http.browser): origins allowed to call the API, comma-separated
    # ("https://shop.example"); empty, the default, allows none. How long a browser may cache
    # a preflight's answer. gzip for JSON bodies over about 1 KB (off where a proxy compresses).
    cors_allow_origins: str = ""
    cors_max_age: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 600
    http_gzip: bool = True
    # Longer than a load balancer's idle timeout (60 s on common ones): a backend that closes an
    # idle connection first races the balancer reusing it, and that request gets no answer.
    http_keep_alive_seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 75
    # Worker processes of a web service on its one port (uvicorn's workers): more than one core.
    web_concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1

    # Rate limits per route group: comma-separated "<requests>/<seconds>", all enforced.
    rate_limit_enabled: bool = True
    rate_limit_fail_open: bool = True
    rate_limit_reads: str = "600/60"
    rate_limit_writes: str = "120/60"
    rate_limit_admin: str = "300/60"
    rate_limit_internal: str = "6000/60"
    # Peers whose X-Forwarded-For is believed: comma-separated addresses or networks.
    trusted_proxies: str = ""

    # The metrics listener of a process that serves no HTTP (the relay, a worker): GET /metrics
    # on METRICS_HOST:METRICS_PORT; 0 turns it off. Loopback by default: it has no auth.
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0

    ready_timeout: Seconds = 1.0
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024

    # The URL settings and the schemes each accepts; subclasses add theirs.
    url_schemes: ClassVar[dict[str, frozenset[str]]] = {
        "DATABASE_URL": frozenset({"postgresql", "postgres"}),
        "REDIS_URL": frozenset({"redis", "rediss", "unix"}),
    }

    @property
    def is_production(self) -> bool:
        return self.env == "production"


S = TypeVar("S", bound=Settings)

# Values never echoed back in error messages.
_SECRET_VARIABLES = frozenset({"JWT_SECRET", "DATABASE_URL", "REDIS_URL"})
# Their defaults point at localhost: fine on a laptop, a silent mistake in production.
_REQUIRED_IN_PRODUCTION = ("DATABASE_URL", "REDIS_URL")
_MSGSPEC_PATH = re.compile(r" - at `\$\.(\w+)`$")


def variables(cls: type[Settings]) -> list[str]:
    """The environment variable names `cls` reads, in declaration order."""
    return [field.encode_name for field in msgspec.structs.fields(cls)]


def load_settings(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Read `cls` from `environ` (default `os.environ`); raise SettingsError on any bad value."""
    environ = os.environ if environ is None else environ
    names = variables(cls)
    raw = {name: environ[name] for name in names if environ.get(name, "") != ""}
    try:
        settings = msgspec.convert(raw, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain(exc, raw) from None
    _check(settings, raw)
    return settings


@contextmanager
def exit_on_settings_error(program: str) -> Iterator[None]:
    """Turn a SettingsError raised in the block into one line on stderr and exit status 2.

    The one place every entry point stops on bad configuration, so that an operator reads the
    same `<program>: configuration error: VARIABLE: problem` from all of them, not a traceback.
    """
    try:
        yield
    except SettingsError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _explain(exc: msgspec.ValidationError, raw: Mapping[str, str]) -> SettingsError:
    message = str(exc)
    match = _MSGSPEC_PATH.search(message)
    if match is None:
        return SettingsError("settings", message)
    variable = match.group(1)
    # Every raw value is a string, so msgspec's "got `str`" says nothing: show the value instead.
    problem = message[: match.start()].removesuffix(", got `str`")
    problem = problem[0].lower() + problem[1:]
    value = raw.get(variable)
    if variable not in _SECRET_VARIABLES and value is not None and repr(value) not in problem:
        problem += f", got {value!r}"
    return SettingsError(variable, problem)


def _check(settings: Settings, raw: Mapping[str, str]) -> None:
    if settings.is_production:
        for variable in _REQUIRED_IN_PRODUCTION:
            if variable not in raw:
                raise SettingsError(variable, "must be set explicitly when ENV=production")
    for variable, schemes in settings.url_schemes.items():
        _check_url(variable, getattr(settings, variable.lower()), schemes)
    if settings.database_pool_min > settings.database_pool_max:
        raise SettingsError("DATABASE_POOL_MIN", "must not exceed DATABASE_POOL_MAX")
    _check_jwt(settings)
    _check_rate_limits(settings)


def _check_url(variable: str, url: str, schemes: frozenset[str]) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise SettingsError(variable, f"is not a valid URL ({exc})") from None
    if parts.scheme not in schemes:
        wanted = " or ".join(f"{s}://" for s in sorted(schemes))
        raise SettingsError(variable, f"must start with {wanted}")


def _check_rate_limits(settings: Settings) -> None:
    for group in RATE_LIMIT_GROUPS:
        variable = f"RATE_LIMIT_{group.upper()}"
        try:
            parse_limits(getattr(settings, variable.lower()))
        except ValueError as exc:
            raise SettingsError(variable, str(exc)) from None
    try:
        parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise SettingsError("TRUSTED_PROXIES", str(exc)) from None


def _check_jwt(settings: Settings) -> None:
    algorithm = settings.jwt_algorithm
    if algorithm in HMAC_ALGORITHMS:
        secret_bytes = len(settings.jwt_secret.encode())
        if settings.is_production and settings.jwt_secret == DEV_JWT_SECRET:
            raise SettingsError("JWT_SECRET", "is the development secret; set a real one for ENV=production")
        if settings.is_production and secret_bytes < MIN_SECRET_BYTES:
            raise SettingsError(
                "JWT_SECRET", f"is {secret_bytes} bytes; ENV=production needs at least {MIN_SECRET_BYTES}"
            )
    elif algorithm in ASYMMETRIC_ALGORITHMS:
        if settings.jwt_public_key_file is None:
            raise SettingsError("JWT_PUBLIC_KEY_FILE", f"is required with JWT_ALGORITHM={algorithm}")
        if not Path(settings.jwt_public_key_file).is_file():
            raise SettingsError(
                "JWT_PUBLIC_KEY_FILE", f"{settings.jwt_public_key_file} is not a readable file"
            )
    else:
        allowed = ", ".join(sorted(HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS))
        raise SettingsError("JWT_ALGORITHM", f"{algorithm!r} is not supported; use one of {allowed}")
