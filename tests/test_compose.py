"""The production compose file and Dockerfile, checked without a Docker engine: the
Temporal layout, one pinned version, health checks, shutdown grace, search attributes,
secrets only from the environment (K10), and `docker-compose config` where installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deposits import search_attributes
from deposits.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {
    "POSTGRES_PASSWORD": "compose-test-pg",
    "XPRIZO_API_KEY": "compose-test-key",
    "WEBHOOK_SECRET": "compose-test-webhook-secret",
    "API_TOKEN": "compose-test-token",
}
REQUIRED = {
    **SECRETS,
    "XPRIZO_BASE_URL": "https://sandbox.invalid/api",
    "XPRIZO_ACCOUNT_ID": "1",
    "WEBHOOK_PUBLIC_URL": "https://hooks.invalid",
}
ONE_SHOT = {"temporal-schema", "temporal-setup"}
LONG_RUNNING = {"postgresql", "temporal", "worker", "webhook", "api"}
_DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def image(compose: dict, service: str) -> tuple[str, str]:
    """A service's image name and tag, with ${VAR:-default} resolved to its default."""
    name, _, tag = _DEFAULT.sub(r"\2", compose["services"][service]["image"]).partition(
        ":"
    )
    return name, tag


def test_the_stack_follows_temporals_self_hosting_layout(compose):
    services = compose["services"]
    assert set(services) == ONE_SHOT | LONG_RUNNING | {"temporal-ui"}
    assert image(compose, "temporal")[0] == "temporalio/server"
    assert image(compose, "temporal-schema")[0] == "temporalio/admin-tools"
    assert image(compose, "temporal-setup")[0] == "temporalio/admin-tools"
    assert image(compose, "temporal-ui")[0] == "temporalio/ui"
    assert image(compose, "postgresql")[0] == "postgres"
    needs = {name: s.get("depends_on", {}) for name, s in services.items()}
    assert needs["temporal-schema"]["postgresql"]["condition"] == "service_healthy"
    assert (
        needs["temporal"]["temporal-schema"]["condition"]
        == "service_completed_successfully"
    )
    assert needs["temporal-setup"]["temporal"]["condition"] == "service_healthy"
    for ours in ("worker", "webhook", "api"):
        assert services[ours]["build"] == "."
        assert (
            needs[ours]["temporal-setup"]["condition"]
            == "service_completed_successfully"
        )
        assert needs[ours]["postgresql"]["condition"] == "service_healthy"


def test_one_pinned_temporal_version_runs_everywhere(compose):
    tags = {
        image(compose, s)[1] for s in ("temporal", "temporal-schema", "temporal-setup")
    }
    assert len(tags) == 1
    [tag] = tags
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), tag
    for service in ("temporal-ui", "postgresql"):
        assert image(compose, service)[1] not in ("", "latest")


def test_every_long_running_service_has_a_health_check(compose):
    for name in LONG_RUNNING:
        assert "test" in compose["services"][name]["healthcheck"], name


def test_stop_grace_outlasts_the_workers_graceful_shutdown(compose):
    worker = compose["services"]["worker"]
    grace = float(worker["environment"]["DEPOSITS_WORKER_SHUTDOWN_GRACE_SECONDS"])
    assert int(worker["stop_grace_period"].removesuffix("s")) > grace
    for name in ("webhook", "api"):
        # uvicorn's own graceful shutdown takes up to 10 s.
        assert (
            int(compose["services"][name]["stop_grace_period"].removesuffix("s")) > 10
        )


def test_the_setup_job_registers_exactly_the_projects_search_attributes(compose):
    script = compose["services"]["temporal-setup"]["command"][0]
    declared = dict(re.findall(r"(Deposit\w+):(Keyword|Int)", script))
    kinds = {"KEYWORD": "Keyword", "INT": "Int"}
    assert declared == {
        key.name: kinds[key.indexed_value_type.name] for key in search_attributes.ALL
    }


def test_secrets_come_only_from_the_environment(compose):
    text = COMPOSE.read_text()
    for variable in SECRETS:
        assert f"${{{variable}:?" in text, variable
    environment = compose["x-deposits-env"]
    for key in (
        "DEPOSITS_XPRIZO_API_KEY",
        "DEPOSITS_WEBHOOK_SECRET",
        "DEPOSITS_API_TOKEN",
    ):
        assert environment[key].startswith("${") and ":?" in environment[key], key


def test_every_deposits_variable_in_the_stack_is_a_real_setting(compose):
    fields = {f"DEPOSITS_{name.upper()}" for name in Settings.model_fields}
    used = set()
    for service in compose["services"].values():
        used |= {
            k for k in (service.get("environment") or {}) if k.startswith("DEPOSITS_")
        }
    assert used and used <= fields, used - fields


def test_the_dockerfile_copies_every_package_it_installs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) ", dockerfile, re.MULTILINE))
    packages = {
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in ("tests", "bench", "docs")
    }
    assert packages <= copied, packages - copied
    assert 'ENTRYPOINT ["deposits"]' in dockerfile


docker_compose = shutil.which("docker-compose")


@pytest.mark.skipif(
    docker_compose is None,
    reason="Debian's docker-compose is not installed (apt-get install docker-compose)",
)
def test_docker_compose_config_accepts_the_file_and_refuses_missing_secrets(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **REQUIRED}
    rendered = subprocess.run(
        [docker_compose, "-f", str(COMPOSE), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    config = yaml.safe_load(rendered.stdout)
    ledger_url = config["services"]["worker"]["environment"]["DEPOSITS_LEDGER_URL"]
    assert ledger_url.startswith("postgresql+psycopg://")

    missing = {k: v for k, v in env.items() if k != "XPRIZO_API_KEY"}
    refused = subprocess.run(
        [docker_compose, "-f", str(COMPOSE), "config", "-q"],
        env=missing,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "XPRIZO_API_KEY" in refused.stderr
