"""Structural checks of the deployment files (Dockerfile, compose, Kubernetes, .env.example).

No Docker engine or cluster is needed: the files are parsed and the properties that matter in
production are asserted (non-root, health checks, Redis persistence, probes, resources, every
configuration variable documented). ``.ci/lint-deploy`` runs the schema linters on top.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SECRET_ENV = ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "REDIS_PASSWORD", "RT_CONTROL_TOKEN")


# --- helpers ---------------------------------------------------------------------------------


def _yaml() -> Any:
    return pytest.importorskip("yaml", reason="PyYAML is needed to parse the deploy files")


def _load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    docs = list(_yaml().safe_load_all(path.read_text(encoding="utf-8")))
    return [d for d in docs if d is not None]


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def _global_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    args: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name.strip()] = value.strip().strip('"')
    return args


def _docstring_variables() -> set[str]:
    """Every variable in the environment table of service/config.py's module docstring."""
    text = (ROOT / "service" / "config.py").read_text(encoding="utf-8")
    doc = text.split('"""')[1]
    rulers = [i for i, line in enumerate(doc.splitlines()) if re.fullmatch(r"=+\s+=+", line)]
    assert len(rulers) >= 2, "config.py's docstring table of variables was not found"
    rows = doc.splitlines()[rulers[0] + 1 : rulers[-1]]
    names: set[str] = set()
    for row in rows:
        # The first column: ``NAME`` or ``NAME`` / ``_SUFFIX`` at the start of a row
        # (continuation rows start with spaces; ``INFO`` etc. in the second column are values).
        lead = re.match(r"(?:``[A-Z_][A-Z0-9_]*``(?:\s*/\s*)?)+", row)
        previous = ""
        for token in re.findall(r"``([A-Z_][A-Z0-9_]*)``", lead.group(0) if lead else ""):
            if token.startswith("_") and previous:
                # "``RT_HTTP_HOST`` / ``_PORT``" names RT_HTTP_HOST and RT_HTTP_PORT
                token = previous.rsplit("_", 1)[0] + token
            names.add(token)
            previous = token
        # ...and variables named in the descriptions (e.g. ``REDIS_PASSWORD``).
        names.update(re.findall(r"``((?:RT|ALPACA|REDIS)_[A-Z0-9_]+)``", row))
    return names


def _env_example() -> tuple[dict[str, str], set[str]]:
    """(active ``NAME=value`` lines, names that appear active or commented-out)."""
    active: dict[str, str] = {}
    mentioned: set[str] = set()
    for line in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not m:
            continue
        mentioned.add(m.group(2))
        if m.group(1) is None:
            active[m.group(2)] = m.group(3)
    return active, mentioned


def _known_variables() -> set[str]:
    return _docstring_variables() | set(SECRET_ENV) | {f"{name}_FILE" for name in SECRET_ENV}


# --- Dockerfile ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _dockerfile_instructions(ROOT / "Dockerfile")


def test_dockerfile_final_stage_runs_regime_trader_as_non_root_with_a_healthcheck(
    dockerfile: list[tuple[str, str]],
) -> None:
    final = _stages(dockerfile)[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage has no USER: it would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in {"root", "0"} and group not in {"root", "0"}
    assert user.isdigit() and int(user) >= 1000, "use a fixed numeric uid (k8s runAsNonRoot)"

    healthchecks = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert healthchecks and "NONE" not in healthchecks[-1].split()
    assert "/healthz" in healthchecks[-1] and "urllib" in healthchecks[-1]

    entrypoints = [rest for keyword, rest in final if keyword == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["regime-trader"]
    cmds = [rest for keyword, rest in final if keyword == "CMD"]
    assert cmds and json.loads(cmds[-1]) == ["run"]
    assert any(keyword == "EXPOSE" and "8080" in rest.split() for keyword, rest in final)


def test_dockerfile_is_multistage_on_a_pinned_slim_base_and_installs_only_the_wheel(
    dockerfile: list[tuple[str, str]],
) -> None:
    stages = _stages(dockerfile)
    assert len(stages) >= 2
    args = _global_args(dockerfile)
    for stage in stages:
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
        assert re.fullmatch(r"python:3\.12[\w.-]*-slim[\w.-]*(@sha256:[0-9a-f]{64})?", image), image

    final = stages[-1]
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        "RT_DATA_DIR=/data",
        "RT_HTTP_HOST=0.0.0.0",
    ):
        assert setting in env.split(), setting
    installs = [rest for keyword, rest in final if keyword == "RUN" and "pip install" in rest]
    assert len(installs) == 1
    words = shlex.split(installs[0])
    assert "--no-cache-dir" in words and "--no-index" in words
    assert [w for w in words if w.endswith(".whl")], "the final stage installs the built wheel"
    assert not any(keyword in {"COPY", "ADD"} for keyword, _ in final), (
        "the final stage must not copy the source tree"
    )
    assert any(keyword == "RUN" and "/data" in rest and "10001" in rest for keyword, rest in final)


def _dockerignored(patterns: list[str], path: str) -> bool:
    """Docker's rule, simplified: the last pattern matching the path or a parent decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        globs = [pat]
        if pat.startswith("**/"):
            globs.append(pat[3:])
            globs.append("*/" + pat[3:])
        for candidate in candidates:
            tails = ["/".join(candidate.split("/")[j:]) for j in range(len(candidate.split("/")))]
            hit = any(fnmatch.fnmatchcase(candidate, g) for g in globs) or (
                pat.startswith("**/") and any(fnmatch.fnmatchcase(t, pat[3:]) for t in tails)
            )
            if hit:
                excluded = not negate
                break
    return excluded


def test_dockerignore_keeps_the_venv_git_caches_and_secrets_out_of_the_context() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "deploy/.env",
        ".env",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/cache",
        ".hypothesis/examples/x",
        "out/report.png",
        "tests/unit/test_deploy.py",
        "service/__pycache__/cli.cpython-312.pyc",
        "regime_trader.egg-info/PKG-INFO",
    ):
        assert _dockerignored(patterns, path), f"{path} would be sent to the Docker daemon"
    for path in ("pyproject.toml", "README.md", "service/cli.py", "strategies/base.py"):
        assert not _dockerignored(patterns, path), f"{path} is needed to build the wheel"


# --- docker compose --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (doc,) = _load_yaml_docs(DEPLOY / "docker-compose.yml")
    return doc


def test_compose_service_waits_for_a_healthy_redis_and_has_a_healthcheck(
    compose: dict[str, Any],
) -> None:
    service = compose["services"]["regime-trader"]
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
    assert service["restart"] == "unless-stopped"
    assert service["build"]["context"] == ".."
    assert ".env" in [e if isinstance(e, str) else e["path"] for e in service["env_file"]]
    env = service["environment"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["RT_HTTP_HOST"] == "0.0.0.0"
    assert any(v.split(":")[1] == "/data" for v in service["volumes"])
    assert set(env) <= _known_variables()


def test_compose_publishes_ports_on_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_compose_redis_persists_with_aof_on_a_named_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = redis["command"]
    words = command if isinstance(command, list) else shlex.split(command)
    assert words[words.index("--appendonly") + 1] == "yes"
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"]


def test_compose_emulator_is_an_optional_profile_of_the_same_image(
    compose: dict[str, Any],
) -> None:
    emulator = compose["services"]["emulator"]
    service = compose["services"]["regime-trader"]
    assert emulator["profiles"] == ["emulator"]
    assert emulator["image"] == service["image"]
    assert emulator["command"][:5] == ["emulator", "--host", "0.0.0.0", "--port", "8765"]
    assert "emulator" not in service.get("depends_on", {}), "the profile must stay optional"


# --- Kubernetes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _load_yaml_docs(path):
            out[(doc["kind"], doc["metadata"]["name"] if "metadata" in doc else path.name)] = doc
    return out


def test_deployment_runs_two_hardened_replicas_with_probes_and_resources(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployment = manifests[("Deployment", "regime-trader")]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    (container,) = pod["containers"]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_names == {"http": 8080}

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", 8080)

    resources = container["resources"]
    assert resources["requests"]["memory"] == "300Mi" and resources["limits"]["memory"] == "1Gi"
    assert resources["requests"]["cpu"] == "100m" and str(resources["limits"]["cpu"]) == "1"

    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for path in ("/data", "/tmp"):
        assert "emptyDir" in volumes[mounts[path]], f"{path} must be a writable emptyDir"


def test_deployment_references_resolve(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """ConfigMaps exist, *_FILE paths land in the mounted Secret's keys, the Service selects."""
    pod = manifests[("Deployment", "regime-trader")]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    for source in container["envFrom"]:
        assert ("ConfigMap", source["configMapRef"]["name"]) in manifests
    config_env = manifests[("ConfigMap", "regime-trader-env")]["data"]
    assert set(config_env) <= _known_variables()

    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    secret_volumes = {
        m["mountPath"]: volumes[m["name"]]["secret"]["secretName"]
        for m in container["volumeMounts"]
        if "secret" in volumes[m["name"]]
    }
    example = manifests[("Secret", "regime-trader-secrets")]
    env = {e["name"]: e for e in container["env"]}
    for name in ("ALPACA_API_KEY_ID_FILE", "ALPACA_API_SECRET_KEY_FILE"):
        directory, _, key = env[name]["value"].rpartition("/")
        assert secret_volumes.get(directory) == "regime-trader-secrets", name
        assert key in example["stringData"], f"{key} is not a key of the example Secret"
    assert set(env) <= _known_variables()
    for entry in env.values():
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in example["stringData"]

    for mount in container["volumeMounts"]:
        config_map = volumes[mount["name"]].get("configMap")
        if config_map:
            assert ("ConfigMap", config_map["name"]) in manifests
    config_file = config_env["RT_CONFIG_FILE"]
    directory, _, filename = config_file.rpartition("/")
    portfolios = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}[directory]
    config_map = manifests[("ConfigMap", volumes[portfolios]["configMap"]["name"])]
    assert "[[portfolio]]" in config_map["data"][filename]

    service = manifests[("Service", "regime-trader")]
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    (port,) = service["spec"]["ports"]
    assert port["name"] == "http" and port["port"] == 8080 and port["targetPort"] == "http"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_kustomization_applies_every_manifest_but_the_example_secret(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    (kustomization,) = _load_yaml_docs(K8S / "kustomization.yaml")
    expected = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == expected


# --- .env.example ----------------------------------------------------------------------------


def test_env_example_documents_every_configuration_variable() -> None:
    documented = _docstring_variables()
    # The table as of writing; if it shrinks, this test should be looked at, not silenced.
    assert {"RT_CONFIG_FILE", "REDIS_URL", "ALPACA_API_KEY_ID", "RT_HTTP_PORT"} <= documented
    _, mentioned = _env_example()
    relevant = {n for n in documented if n.startswith(("RT_", "ALPACA_", "REDIS_"))}
    assert relevant - mentioned == set()
    assert mentioned - _known_variables() == set(), "unknown variables in .env.example"


def test_env_example_ships_safe_values() -> None:
    """No empty assignments (empty is not unset), no secrets, no live trading."""
    active, _ = _env_example()
    assert {k for k, v in active.items() if v.strip() == ""} == set()
    assert not set(active) & {*SECRET_ENV, *(f"{name}_FILE" for name in SECRET_ENV)}
    assert active.get("RT_LIVE_TRADING", "false") == "false"


def test_k8s_portfolio_file_is_a_valid_portfolio_config(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    from regime_trader.service.portfolio_config import PortfolioConfig

    text = manifests[("ConfigMap", "regime-trader-portfolios")]["data"]["portfolios.toml"]
    tables = tomllib.loads(text)["portfolio"]
    assert tables
    for table in tables:
        PortfolioConfig(**table)  # raises on an unknown key or a bad value
