import pytest

from app_product.settings import CatalogSettings
from shared.config import (
    DEV_JWT_SECRET,
    Settings,
    SettingsError,
    exit_on_settings_error,
    load_settings,
    variables,
)

PRODUCTION = {
    "ENV": "production",
    "DATABASE_URL": "postgresql://catalog@db.internal/catalog",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "JWT_SECRET": "x" * 32,
}


def error_for(environ: dict[str, str]) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        load_settings(CatalogSettings, environ)
    return caught.value


DEVELOPMENT = {"ENV": "development"}


def test_env_defaults_to_production_and_refuses_to_guess_urls():
    # Forgetting ENV must not quietly accept the development secret.
    error = error_for({})
    assert error.variable == "DATABASE_URL"
    assert "ENV=production" in str(error)


def test_defaults_load_in_development():
    settings = load_settings(CatalogSettings, DEVELOPMENT)
    assert settings.env == "development"
    assert settings.port == 8001
    assert settings.jwt_algorithm == "HS256"
    assert settings.max_body_bytes == 1024 * 1024


def test_values_are_read_and_typed():
    settings = load_settings(CatalogSettings, {"PORT": "9001", "READY_TIMEOUT": "0.5", "ENV": "test"})
    assert (settings.port, settings.ready_timeout, settings.env) == (9001, 0.5, "test")


def test_empty_value_means_default():
    assert load_settings(CatalogSettings, {**DEVELOPMENT, "PORT": ""}).port == 8001


@pytest.mark.parametrize(
    ("environ", "variable", "fragment"),
    [
        ({"PORT": "abc"}, "PORT", "'abc'"),
        ({"PORT": "0"}, "PORT", ">= 1"),
        ({"PORT": "70000"}, "PORT", "<= 65535"),
        ({"ENV": "prod"}, "ENV", "'prod'"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL", "'LOUD'"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL", "postgresql://"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL", "redis://"),
        ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM", "not supported"),
        ({"JWT_ALGORITHM": "RS256"}, "JWT_PUBLIC_KEY_FILE", "required"),
        (
            {"JWT_ALGORITHM": "ES256", "JWT_PUBLIC_KEY_FILE": "/no/such.pem"},
            "JWT_PUBLIC_KEY_FILE",
            "not a readable",
        ),
        ({"DATABASE_POOL_MIN": "5", "DATABASE_POOL_MAX": "2"}, "DATABASE_POOL_MIN", "DATABASE_POOL_MAX"),
        ({"READY_TIMEOUT": "-1"}, "READY_TIMEOUT", "> 0"),
    ],
)
def test_bad_value_names_the_variable(environ, variable, fragment):
    error = error_for({**DEVELOPMENT, **environ})
    assert error.variable == variable
    message = str(error)
    assert message.startswith(f"configuration error: {variable}: ")
    assert fragment in message
    assert "\n" not in message


def test_production_refuses_the_development_secret():
    error = error_for({**PRODUCTION, "JWT_SECRET": DEV_JWT_SECRET})
    assert error.variable == "JWT_SECRET"
    assert "development secret" in str(error)


def test_production_refuses_a_short_secret_without_echoing_it():
    error = error_for({**PRODUCTION, "JWT_SECRET": "s3cr3t-but-short"})
    assert error.variable == "JWT_SECRET"
    assert "16 bytes" in str(error)
    assert "s3cr3t" not in str(error)


def test_production_needs_explicit_urls():
    for variable in ("DATABASE_URL", "REDIS_URL"):
        environ = {k: v for k, v in PRODUCTION.items() if k != variable}
        assert error_for(environ).variable == variable


def test_production_with_real_values_loads():
    settings = load_settings(CatalogSettings, PRODUCTION)
    assert settings.is_production


def test_development_tolerates_a_short_secret():
    assert load_settings(CatalogSettings, {**DEVELOPMENT, "JWT_SECRET": "short"}).jwt_secret == "short"


def test_variables_are_upper_case_field_names():
    names = variables(Settings)
    assert "DATABASE_URL" in names and "JWT_SECRET" in names
    assert all(name == name.upper() for name in names)


def test_a_settings_error_exits_with_status_2_and_one_line(capsys):
    with pytest.raises(SystemExit) as stopped, exit_on_settings_error("worker"):
        load_settings(Settings, {"ENV": "development", "PORT": "0"})
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("worker: configuration error: PORT: ")
    assert err.count("\n") == 1
