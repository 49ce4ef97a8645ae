"""Token verification, with no I/O: every way a token can be wrong gets a 401 with a challenge."""

import base64
import hashlib
import hmac
import json
import time
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.requests import HTTPConnection

from shared.config import Settings, SettingsError, load_settings
from shared.http.auth import (
    Principal,
    TokenVerifier,
    bearer_token,
    require_role,
    require_user,
    verified_principal,
)
from shared.http.problems import Forbidden, Unauthorized

SECRET = "unit-test-secret-0123456789abcdef-xyz"


def verifier(**environ: str) -> TokenVerifier:
    return TokenVerifier(load_settings(Settings, {"ENV": "test", "JWT_SECRET": SECRET, **environ}))


def claims(**overrides):
    now = int(time.time())
    return {"uid": "alice", "roles": ["admin"], "iat": now, "exp": now + 60, **overrides}


def hs256(payload, key=SECRET, headers=None):
    return jwt.encode(payload, key, algorithm="HS256", headers=headers)


def rejected(v: TokenVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        v.verify(token)
    return invalid_token(caught.value)


def invalid_token(exc: Unauthorized) -> Unauthorized:
    """`exc` is RFC 6750's invalid_token, its problem detail repeated as the error_description
    (which must be printable ASCII without quotes or backslashes, or the header would break)."""
    challenge = exc.headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="storefront", error="invalid_token", error_description="{exc.detail}"'
    assert exc.detail and all(" " <= c <= "~" and c not in '"\\' for c in exc.detail)
    return exc


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_valid_token_gives_user_and_roles():
    assert verifier().verify(hs256(claims())) == Principal(user_id="alice", roles=frozenset({"admin"}))


def test_sub_is_used_when_there_is_no_uid():
    token = hs256({**{k: v for k, v in claims().items() if k != "uid"}, "sub": "bob"})
    assert verifier().verify(token).user_id == "bob"


def test_numeric_uid_becomes_a_string():
    assert verifier().verify(hs256(claims(uid=42))).user_id == "42"


def test_space_separated_roles_are_accepted():
    assert verifier().verify(hs256(claims(roles="admin support"))).roles == {"admin", "support"}


def test_missing_exp_is_rejected():
    payload = claims()
    del payload["exp"]
    assert "exp" in rejected(verifier(), hs256(payload)).detail


def test_expired_token_is_rejected():
    assert "expired" in rejected(verifier(), hs256(claims(exp=int(time.time()) - 120))).detail


def test_expiry_within_the_leeway_is_accepted():
    assert verifier().verify(hs256(claims(exp=int(time.time()) - 5))).user_id == "alice"


def test_not_before_in_the_future_is_rejected():
    assert "not valid yet" in rejected(verifier(), hs256(claims(nbf=int(time.time()) + 600))).detail


def test_issued_in_the_future_is_rejected():
    rejected(verifier(), hs256(claims(iat=int(time.time()) + 600)))


def test_wrong_secret_is_rejected():
    assert (
        "signature" in rejected(verifier(), hs256(claims(), key="another-secret-0123456789abcdef-xyz")).detail
    )


def test_tampered_payload_is_rejected():
    header, _, signature = hs256(claims()).split(".")
    forged = b64(json.dumps(claims(roles=["admin", "root"])).encode())
    rejected(verifier(), f"{header}.{forged}.{signature}")


def test_alg_none_is_rejected():
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    assert "algorithm" in rejected(verifier(), f"{header}.{payload}.").detail


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "🙂.🙂.🙂"])
def test_malformed_token_is_rejected(token):
    assert "malformed" in rejected(verifier(), token).detail


def test_no_usable_user_id_is_rejected():
    payload = claims()
    del payload["uid"]
    for token in (hs256(payload), hs256(claims(uid="")), hs256(claims(uid=["alice"]))):
        assert "uid" in rejected(verifier(), token).detail


def test_roles_of_the_wrong_type_are_rejected():
    assert "roles" in rejected(verifier(), hs256(claims(roles=[1, 2]))).detail
    assert "roles" in rejected(verifier(), hs256(claims(roles={"admin": True}))).detail


def test_no_roles_claim_means_no_roles():
    payload = claims()
    del payload["roles"]
    assert verifier().verify(hs256(payload)) == Principal(user_id="alice", roles=frozenset())


def test_issuer_and_audience_are_checked_when_configured():
    v = verifier(JWT_ISSUER="https://auth.example", JWT_AUDIENCE="storefront")
    good = claims(iss="https://auth.example", aud="storefront")
    assert v.verify(hs256(good)).user_id == "alice"
    assert "issuer" in rejected(v, hs256({**good, "iss": "https://evil.example"})).detail
    assert "audience" in rejected(v, hs256({**good, "aud": "another-app"})).detail
    assert "iss" in rejected(v, hs256({k: val for k, val in good.items() if k != "iss"})).detail


def test_audience_is_ignored_when_not_configured():
    assert verifier().verify(hs256(claims(aud="anything"))).user_id == "alice"


@pytest.fixture
def rsa_keys(tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "public.pem"
    path.write_bytes(public_pem)
    return private, public_pem, path


def test_rs256_token_verifies_with_the_public_key(rsa_keys):
    private, _, path = rsa_keys
    v = verifier(JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY_FILE=str(path))
    assert v.verify(jwt.encode(claims(), private, algorithm="RS256")).user_id == "alice"


def test_algorithm_confusion_is_rejected(rsa_keys):
    # The classic attack: sign with HS256 using the (public) RSA key as the HMAC secret.
    _, public_pem, path = rsa_keys
    v = verifier(JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY_FILE=str(path))
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    signature = b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert "algorithm" in rejected(v, f"{header}.{payload}.{signature}").detail


def test_hs256_service_rejects_an_rs256_token(rsa_keys):
    private, _, _ = rsa_keys
    rejected(verifier(), jwt.encode(claims(), private, algorithm="RS256"))


def test_es256_token_verifies(tmp_path):
    private = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    v = verifier(JWT_ALGORITHM="ES256", JWT_PUBLIC_KEY_FILE=str(path))
    assert v.verify(jwt.encode(claims(), private, algorithm="ES256")).user_id == "alice"


def test_key_of_the_wrong_type_is_a_settings_error(rsa_keys):
    _, _, path = rsa_keys
    with pytest.raises(SettingsError) as caught:
        verifier(JWT_ALGORITHM="ES256", JWT_PUBLIC_KEY_FILE=str(path))
    assert caught.value.variable == "JWT_PUBLIC_KEY_FILE"
    assert "holds a RSAPublicKey, which ES256 cannot use" in str(caught.value)


def test_file_that_is_not_a_key_is_a_settings_error(tmp_path):
    path = tmp_path / "junk.pem"
    path.write_text("not a key")
    with pytest.raises(SettingsError) as caught:
        verifier(JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY_FILE=str(path))
    assert caught.value.variable == "JWT_PUBLIC_KEY_FILE"
    assert f"cannot load a PEM public key from {path}" in str(caught.value)


def test_key_file_that_cannot_be_read_is_a_settings_error(tmp_path):
    # Settings built in code skip load_settings' check that the file exists.
    path = tmp_path / "gone.pem"
    with pytest.raises(SettingsError) as caught:
        TokenVerifier(Settings(env="test", jwt_algorithm="RS256", jwt_public_key_file=str(path)))
    assert caught.value.variable == "JWT_PUBLIC_KEY_FILE"
    assert f"cannot load a PEM public key from {path}" in str(caught.value)


def test_asymmetric_algorithm_without_a_key_file_is_a_settings_error():
    with pytest.raises(SettingsError) as caught:
        TokenVerifier(Settings(env="test", jwt_algorithm="ES256"))
    assert caught.value.variable == "JWT_PUBLIC_KEY_FILE"
    assert "is required with JWT_ALGORITHM=ES256" in str(caught.value)


def test_user_id_with_control_characters_is_rejected():
    rejected(verifier(), hs256(claims(uid="alice\u0000")))
    rejected(verifier(), hs256(claims(uid="a" * 256)))


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def decodes(monkeypatch):
    """How many times PyJWT was asked to verify a token."""
    calls = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_a_verified_token_is_remembered_until_it_expires(decodes):
    clock = Clock()
    v = TokenVerifier(load_settings(Settings, {"ENV": "test", "JWT_SECRET": SECRET}), clock=clock)
    token = hs256(claims(exp=int(clock.now) + 60))
    assert v.verify(token).user_id == "alice"
    assert v.verify(token).user_id == "alice"
    assert len(decodes) == 1
    clock.now += 60 + 30  # past exp and the default 30 s leeway
    assert "expired" in rejected(v, token).detail
    assert len(decodes) == 1  # the remembered expiry decided


def test_a_token_that_failed_is_not_remembered(decodes):
    v, token = verifier(), hs256(claims(), key="another-secret-0123456789abcdef-xyz")
    rejected(v, token)
    rejected(v, token)
    assert len(decodes) == 2


def test_an_altered_remembered_token_is_verified_afresh():
    v, token = verifier(), hs256(claims())
    v.verify(token)
    header, _, signature = token.split(".")
    forged = hs256(claims(roles=["admin", "owner"]))
    assert "signature" in rejected(v, f"{header}.{forged.split('.')[1]}.{signature}").detail


def test_cache_size_zero_verifies_every_request(decodes):
    v, token = verifier(JWT_CACHE_SIZE="0"), hs256(claims())
    v.verify(token)
    v.verify(token)
    assert len(decodes) == 2


EXPIRED = 'Bearer realm="storefront", error="invalid_token", error_description="The token has expired"'


def test_an_expired_token_gets_the_same_challenge_remembered_or_not():
    # Clients look for this to know that getting a new token will help.
    clock = Clock()
    v = TokenVerifier(load_settings(Settings, {"ENV": "test", "JWT_SECRET": SECRET}), clock=clock)
    remembered = hs256(claims(exp=int(clock.now) + 60))
    v.verify(remembered)
    clock.now += 60 + 30
    assert rejected(v, remembered).headers["WWW-Authenticate"] == EXPIRED
    assert rejected(v, hs256(claims(exp=int(time.time()) - 120))).headers["WWW-Authenticate"] == EXPIRED


def test_a_remembered_token_expires_at_exp_plus_the_leeway_as_pyjwt_decides():
    # PyJWT refuses once exp <= now - leeway: the remembered token must not outlive that.
    clock = Clock()
    settings = load_settings(Settings, {"ENV": "test", "JWT_SECRET": SECRET, "JWT_LEEWAY_SECONDS": "10"})
    v = TokenVerifier(settings, clock=clock)
    exp = int(clock.now) + 60
    token = hs256(claims(exp=exp))
    v.verify(token)
    clock.now = exp + 10 - 0.5
    assert v.verify(token).user_id == "alice"
    clock.now = exp + 10
    assert rejected(v, token).headers["WWW-Authenticate"] == EXPIRED


def connection(
    authorization: str | None = None, token_verifier: TokenVerifier | None = None
) -> HTTPConnection:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    app = SimpleNamespace(state=SimpleNamespace(token_verifier=token_verifier or verifier()))
    return HTTPConnection({"type": "http", "headers": headers, "app": app})


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(scheme):
    assert bearer_token(connection(f"{scheme} abc.def.ghi")) == "abc.def.ghi"


def test_spaces_around_the_token_are_ignored():
    assert bearer_token(connection("Bearer   abc.def.ghi  ")) == "abc.def.ghi"


@pytest.mark.parametrize("authorization", [None, "Basic YWRtaW46YWRtaW4=", "Token abc", "Bearerabc"])
def test_no_bearer_credentials_is_no_token(authorization):
    assert bearer_token(connection(authorization)) is None


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Bearer   ", "Bearer a b", "Bearer a\tb c"])
def test_bearer_credentials_not_of_the_form_bearer_token_are_invalid(authorization):
    with pytest.raises(Unauthorized) as caught:
        bearer_token(connection(authorization))
    assert "'Bearer <token>'" in invalid_token(caught.value).detail


def test_no_token_is_a_challenge_without_an_error_code():
    with pytest.raises(Unauthorized) as caught:
        require_user(connection())
    assert caught.value.headers == {"WWW-Authenticate": 'Bearer realm="storefront"'}


def test_a_request_decodes_its_token_once(decodes):
    conn = connection(f"Bearer {hs256(claims())}", verifier(JWT_CACHE_SIZE="0"))
    first = require_user(conn)
    assert require_user(conn) == first == Principal(user_id="alice", roles=frozenset({"admin"}))
    assert len(decodes) == 1


def test_the_rate_limiters_verification_is_reused_by_the_route(decodes):
    # The limiter and the route see the same scope through different connection objects.
    conn = connection(f"Bearer {hs256(claims())}", verifier(JWT_CACHE_SIZE="0"))
    assert verified_principal(HTTPConnection(conn.scope)) == require_user(conn)
    assert len(decodes) == 1


def test_an_invalid_token_is_no_principal_for_the_rate_limiter():
    assert verified_principal(connection("Bearer not-a-jwt")) is None
    assert verified_principal(connection()) is None


def test_a_role_the_token_grants_is_enough():
    conn = connection(f"Bearer {hs256(claims(roles=['support', 'admin']))}")
    assert require_role(conn, "admin").user_id == "alice"


def test_a_missing_role_is_403_naming_the_scope():
    conn = connection(f"Bearer {hs256(claims(roles=['support']))}")
    with pytest.raises(Forbidden) as caught:
        require_role(conn, "admin")
    assert caught.value.headers == {
        "WWW-Authenticate": 'Bearer realm="storefront", error="insufficient_scope", scope="admin"'
    }
    assert "'admin'" in caught.value.detail


def test_a_role_check_without_a_token_is_401():
    with pytest.raises(Unauthorized):
        require_role(connection(), "admin")
