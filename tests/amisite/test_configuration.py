"""Bad configuration fails at start with one clear line; production settings pass --deploy."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args, **env_overrides):
    drop = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"SECRET_KEY": "test-only", **env_overrides})
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unparseable_database_url_is_one_line_naming_the_variable():
    result = run(["manage.py", "check"], DATABASE_URL="this is not a url")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]


def test_unsupported_database_engine_is_named():
    result = run(["manage.py", "check"], DATABASE_URL="mssql://u:p@host/db")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_missing_secret_key_without_debug_is_refused():
    result = run(["manage.py", "check"], SECRET_KEY="")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "configuration error: SECRET_KEY is not set (required when DEBUG is off)"
    )


def test_unreachable_redis_stops_the_launcher_with_one_line(tmp_path):
    port = closed_port()
    result = run(
        ["-m", "amisite.launcher"],
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        AMI_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "REDIS_URL" in lines[0] and str(port) in lines[0]
    assert "password" not in lines[0]


def test_redis_url_password_is_never_printed(tmp_path):
    port = closed_port()
    result = run(
        ["-m", "amisite.launcher"],
        REDIS_URL=f"redis://:s3cret-pass@127.0.0.1:{port}/0",
        AMI_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 2
    assert "s3cret-pass" not in result.stderr + result.stdout


def test_unreachable_database_stops_the_launcher_with_one_line(tmp_path):
    port = closed_port()
    result = run(
        ["-m", "amisite.launcher"],
        DATABASE_URL=f"postgres://nobody@127.0.0.1:{port}/ami",
        REDIS_URL=os.environ["REDIS_URL"],
        AMI_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]


@pytest.mark.parametrize("debug", ["false"])
def test_production_settings_pass_check_deploy(debug):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG=debug,
        SECRET_KEY="k" * 20 + "-production-like-secret-with-enough-entropy-9f8e7d6c5b4a",
        ALLOWED_HOSTS="ami.example.org",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
        CSRF_TRUSTED_ORIGINS="https://ami.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_finds_a_missing_tls_setting():
    """The check above can fail: without HSTS the same command names the problem."""
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="false",
        SECRET_KEY="k" * 20 + "-production-like-secret-with-enough-entropy-9f8e7d6c5b4a",
        ALLOWED_HOSTS="ami.example.org",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="0",
    )
    assert result.returncode != 0 and "security.W004" in result.stdout + result.stderr


# Each way to start a worker (or beat, which feeds them), run without REDIS_URL or
# CELERY_BROKER_URL: a memory:// broker lives in one process, so each would wait forever.
STARTS_A_WORKER = {
    "celery worker": (["-m", "celery", "-A", "amisite", "worker", "--pool", "solo"], 2),
    "celery beat": (["-m", "celery", "-A", "amisite", "beat", "--schedule", "{tmp}/beat"], 2),
    "collection bench": (["bench/collection_e2e.py", "--quick"], 1),
    "make run": (["-m", "amisite.launcher"], 2),
}


@pytest.mark.parametrize("what", STARTS_A_WORKER)
def test_without_a_shared_broker_whatever_starts_a_worker_stops_with_one_line(what, tmp_path):
    args, code = STARTS_A_WORKER[what]
    env = {"AMI_VAR_DIR": str(tmp_path), "AMI_SECRETS_KEY": "x"}
    if what == "make run":  # it starts its own Redis, so only an explicit memory:// can do this
        env["CELERY_BROKER_URL"] = "memory://"
    result = run([arg.format(tmp=tmp_path) for arg in args], **env)
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "configuration error:" in lines[0]
    assert "set REDIS_URL" in lines[0] and "memory://" in lines[0]
