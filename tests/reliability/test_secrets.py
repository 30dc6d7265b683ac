"""Secrets never leave the process, the ops server is loopback-only, and TLS Redis works.

One scenario, run once for the module as real processes: a private ``redis-server`` with a
password (given to the service as ``REDIS_PASSWORD_FILE``), the emulator started with the
(distinctive) test API keys, a local HTTP receiver behind an apprise ``json://user:TOKEN@...``
webhook, and ``regime-trader run``. The clock is driven through a few sessions; then the emulator
answers ``GET /v2/account`` with HTTP 503 whose message *quotes the API key id and secret* (a proxy
echoing the request's headers), so a cycle fails, an exception message travels into the log,
the Redis status, a failure alert and the webhook -- while the webhook itself answers 500, so
the notifier's failure is logged too. Then every artefact is searched for every secret:

* every line the service wrote (stdout and stderr, one file);
* every value in the Redis database (alerts stream, cycle records, ledger, status, ...);
* every webhook request body;
* the ``/status``, ``/metrics`` and ``/readyz`` bodies and the dashboard page (``/``), during
  the failure and after, and the answers to the dashboard's halt and resume (its control token
  is one more secret, given as ``RT_CONTROL_TOKEN_FILE``, used once wrongly and once rightly);
* the output of ``regime-trader status``.

The secrets searched for are the values themselves and the encodings a leak would likely take
(the webhook's Basic-auth header, URL-quoting).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.server
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis

from regime_trader.service.alerts import Alert
from regime_trader.service.config import load_settings
from tests.support.emulator import KEY_ID, SECRET_KEY
from tests.support.processes import (
    clean_env,
    emulator_process,
    free_port,
    private_redis,
    run_cli,
    service_env,
    start_service,
    wait_until,
)
from tests.support.redis_dump import dump_keys

pytestmark = pytest.mark.slow

WEBHOOK_USER = "hookuser"
WEBHOOK_TOKEN = "whTOKEN-4b7c1d9e2f3a5b6c"
REDIS_PASSWORD = "redisPW-5e6f7a8b9c0d1e2f"
CONTROL_TOKEN = "ctlTOKEN-8a2b4c6d8e0f1a3b"
SECRETS = {
    "ALPACA_API_KEY_ID": KEY_ID,
    "ALPACA_API_SECRET_KEY": SECRET_KEY,
    "webhook token": WEBHOOK_TOKEN,
    "webhook basic auth": base64.b64encode(f"{WEBHOOK_USER}:{WEBHOOK_TOKEN}".encode()).decode(),
    "REDIS_PASSWORD": REDIS_PASSWORD,
    "RT_CONTROL_TOKEN": CONTROL_TOKEN,
}
SESSIONS_BEFORE_FAULT = 3


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Records every webhook body; answers 500 while the server's ``failing`` flag is set."""

    server: _Webhook

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.bodies.append(self.rfile.read(length).decode("utf-8", errors="replace"))
        self.send_response(500 if self.server.failing else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep the test output clean


class _Webhook(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.bodies: list[str] = []
        self.failing = False

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@contextlib.contextmanager
def webhook_receiver() -> Iterator[_Webhook]:
    server = _Webhook()
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Artefacts:
    """Everything the service let out during the scenario, by name."""

    texts: dict[str, str] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    webhook_bodies: list[str] = field(default_factory=list)
    http_port: int = 0
    listening: list[tuple[str, int]] = field(default_factory=list)
    refused_on: dict[str, str] = field(default_factory=dict)
    unauthenticated_redis: str = ""
    status_exit_code: int | None = None


def _alerts(client: redis.Redis) -> list[Alert]:
    entries: list[Any] = client.xrange("rt:alerts")  # type: ignore[assignment]
    return [Alert.from_json(fields["json"]) for _, fields in entries]


def _dump(client: redis.Redis) -> str:
    """Every key and value of the database as text (strings, hashes, lists, zsets, streams)."""
    return json.dumps(dump_keys(client), ensure_ascii=False)


def _listening(port: int) -> list[tuple[str, int]]:
    """(local address, port) of every LISTEN socket on ``port``, from /proc/net/tcp{,6}."""
    found = []
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                local, _remote, state = line.split()[1:4]
                address, hex_port = local.split(":")
                if state != "0A" or int(hex_port, 16) != port:  # 0A = LISTEN
                    continue
                raw = bytes.fromhex(address)
                # /proc prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append((str(ipaddress.ip_address(words)), family))
    return found


def _non_loopback_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (the route-finding UDP trick; no packet)."""
    addresses = set()
    for target in ("192.0.2.1", "10.255.255.255", "8.8.8.8"):
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((target, 9))
            addresses.add(s.getsockname()[0])
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addresses.add(str(info[4][0]))
    return sorted(a for a in addresses if not ipaddress.ip_address(a).is_loopback)


def _connect_error(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=2):
            return ""
    except OSError as e:
        return type(e).__name__


def _get(url: str) -> str:
    response = httpx.get(url, timeout=10)
    return f"HTTP {response.status_code}\n{response.text}"


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Artefacts:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server binary: the password scenario needs a private server")
    tmp = tmp_path_factory.mktemp("secrets")
    out = Artefacts()
    password_file = tmp / "redis-password"
    password_file.write_text(REDIS_PASSWORD + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    token_file = tmp / "control-token"
    token_file.write_text(CONTROL_TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    with (
        private_redis(tmp, password=REDIS_PASSWORD, persistent=False) as server,
        webhook_receiver() as webhook,
        emulator_process(tmp, "2024-03-04", state=False) as emulator,
    ):
        url = server.url
        client = redis.Redis.from_url(url, password=REDIS_PASSWORD, decode_responses=True)
        env = service_env(
            tmp,
            url,
            emulator.url,
            REDIS_PASSWORD_FILE=str(password_file),
            RT_CONTROL_TOKEN_FILE=str(token_file),
            RT_ALERT_URLS=(f"json://{WEBHOOK_USER}:{WEBHOOK_TOKEN}@127.0.0.1:{webhook.port}/hook"),
            RT_LOG_LEVEL="DEBUG",
        )
        service = start_service(tmp, env)
        out.http_port = int(env["RT_HTTP_PORT"])

        def done(session: str) -> bool:
            return client.hget(f"rt:default:cycle:{session}", "step") == "done"

        try:
            for _ in range(SESSIONS_BEFORE_FAULT):
                session = emulator.api.open_session()
                wait_until(lambda s=session: done(s), 90, f"the cycle of {session}")

            # The failure: the broker's error message quotes both API keys.
            webhook.failing = True
            fault = {
                "path": "/v2/account",
                "status": 503,
                "message": f"upstream refused APCA-API-KEY-ID={KEY_ID} "
                f"APCA-API-SECRET-KEY={SECRET_KEY}",
            }
            emulator.api.add_fault(**fault)
            failing = emulator.api.open_session()
            wait_until(
                lambda: any(a.kind == "failed" for a in _alerts(client)), 60, "a failure alert"
            )
            wait_until(lambda: len(webhook.bodies) >= SESSIONS_BEFORE_FAULT + 1, 30, "webhook")
            for name in ("status", "metrics", "readyz"):
                out.texts[f"/{name} during the failure"] = _get(f"{service.url}/{name}")
            out.texts["/ (dashboard) during the failure"] = _get(f"{service.url}/")
            status = run_cli("status", env=env, timeout=120)
            out.status_exit_code = status.returncode
            out.texts["regime-trader status stdout"] = status.stdout
            out.texts["regime-trader status stderr"] = status.stderr

            # Recovery: the next wake-ups finish the same session.
            emulator.api.clear_faults()
            webhook.failing = False
            wait_until(lambda: done(failing), 90, f"the retried cycle of {failing}")
            session = emulator.api.open_session()
            wait_until(lambda s=session: done(s), 90, f"the cycle of {session}")

            for name in ("status", "metrics", "readyz"):
                out.texts[f"/{name} after recovery"] = _get(f"{service.url}/{name}")
            out.texts["/ (dashboard) after recovery"] = _get(f"{service.url}/")
            out.texts["dashboard controls"] = _controls(service.url)
            out.listening = _listening(out.http_port)
            out.refused_on = {
                address: _connect_error(address, out.http_port)
                for address in _non_loopback_addresses()
            }
            try:
                redis.Redis.from_url(url, socket_connect_timeout=2).ping()
            except redis.RedisError as e:
                out.unauthenticated_redis = type(e).__name__
        finally:
            service.stop()
        out.texts["service log (stdout+stderr)"] = service.log_path.read_text(
            encoding="utf-8", errors="replace"
        )
        out.texts["redis database"] = _dump(client)
        out.alerts = _alerts(client)
        out.webhook_bodies = list(webhook.bodies)
        out.texts["webhook bodies"] = "\n".join(webhook.bodies)
        client.close()
    return out


def _controls(url: str) -> str:
    """A halt with a wrong token, then with the right one, and a resume: every answer."""
    answers = []
    for action, token in (
        ("halt", "not-the-token"),
        ("halt", CONTROL_TOKEN),
        ("resume", CONTROL_TOKEN),
    ):
        form = {"portfolio": "default", "reason": "secrets test", "token": token}
        response = httpx.post(
            f"{url}/control/{action}", data=form, timeout=10, follow_redirects=True
        )
        answers.append(f"{action}: HTTP {response.status_code}\n{response.text}")
    return "\n".join(answers)


def _leaks(text: str) -> list[str]:
    found = [name for name, value in SECRETS.items() if value in text]
    found += [f"{name} (URL-quoted)" for name, value in SECRETS.items() if quote(value) in text]
    return sorted(set(found))


def test_the_scenario_produced_what_is_searched(artefacts: Artefacts) -> None:
    """The search below means something only if the failure travelled everywhere."""
    failed = [a for a in artefacts.alerts if a.kind == "failed"]
    assert failed, "no failure alert"
    assert "503" in failed[0].summary and "***" in failed[0].summary, failed[0].summary
    assert any(a.kind == "rebalanced" for a in artefacts.alerts)
    assert len(artefacts.webhook_bodies) >= SESSIONS_BEFORE_FAULT + 2
    assert any("503" in body for body in artefacts.webhook_bodies)
    log = artefacts.texts["service log (stdout+stderr)"]
    assert "alert_channel_failed" in log, "the webhook's 500 was not logged"
    assert "503" in log and "***" in log
    assert "last_reason" in artefacts.texts["/status during the failure"]
    assert artefacts.status_exit_code == 0, artefacts.texts["regime-trader status stderr"]
    assert '"redis": true' in artefacts.texts["regime-trader status stdout"]
    assert artefacts.unauthenticated_redis == "AuthenticationError", "Redis had no password"
    # run serves the dashboard, and the failure's alert (quoting the keys) is on it, redacted.
    page = artefacts.texts["/ (dashboard) during the failure"]
    assert page.startswith("HTTP 200") and "Recent alerts" in page, page[:300]
    assert "503" in page and "***" in page
    controls = artefacts.texts["dashboard controls"].split("\n")
    assert [line.split(" ")[1:3] for line in controls if line.startswith(("halt:", "resume:"))] == [
        ["HTTP", "403"],
        ["HTTP", "200"],
        ["HTTP", "200"],
    ], controls  # the redirects to the page were followed


@pytest.mark.parametrize(
    "name",
    [
        "service log (stdout+stderr)",
        "redis database",
        "webhook bodies",
        "/status during the failure",
        "/metrics during the failure",
        "/readyz during the failure",
        "/status after recovery",
        "/metrics after recovery",
        "/readyz after recovery",
        "/ (dashboard) during the failure",
        "/ (dashboard) after recovery",
        "dashboard controls",
        "regime-trader status stdout",
        "regime-trader status stderr",
    ],
)
def test_no_secret_appears_in(artefacts: Artefacts, name: str) -> None:
    text = artefacts.texts[name]
    assert text.strip() or name.endswith("stderr"), f"{name} is empty"
    leaks = _leaks(text)
    assert not leaks, f"{name} contains {leaks}"


def test_the_ops_server_listens_on_loopback_only(artefacts: Artefacts) -> None:
    assert artefacts.listening, f"nothing listens on port {artefacts.http_port}"
    for address, _family in artefacts.listening:
        assert ipaddress.ip_address(address).is_loopback, f"listening on {address}"
    for address, error in artefacts.refused_on.items():
        assert error, f"{address}:{artefacts.http_port} accepted a connection"


# ---------------------------------------------------------------------------------- TLS


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (``cryptography``), as (cert, key) files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "redis.crt", directory / "redis.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


@contextlib.contextmanager
def tls_redis(tmp: Path, password: str) -> Iterator[tuple[int, Path]]:
    """A ``redis-server`` speaking TLS only, with a password; yields (port, CA file)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary")
    try:
        cert, key = _self_signed(tmp)
    except ImportError:
        pytest.skip("the cryptography package is not installed")
    port = free_port()
    conf = tmp / "redis-tls.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"tls-port {port}",
                "bind 127.0.0.1",
                f"tls-cert-file {cert}",
                f"tls-key-file {key}",
                f"tls-ca-cert-file {cert}",
                "tls-auth-clients no",
                f"requirepass {password}",
                "save ''",
                "appendonly no",
                f"dir {tmp}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    conf.chmod(0o600)
    log = tmp / "redis-tls.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([binary, str(conf)], stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
        client = redis.Redis.from_url(url, password=password, socket_connect_timeout=1)

        def up() -> bool:
            if process.poll() is not None:
                return True
            with contextlib.suppress(redis.RedisError):
                return bool(client.ping())
            return False

        wait_until(up, 20, "the TLS redis-server")
        if process.poll() is not None:
            pytest.skip(f"redis-server without TLS support: {log.read_text()[-300:]}")
        client.close()
        yield port, cert
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


def test_rediss_url_is_accepted_by_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("RT_", "ALPACA_", "REDIS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_URL", "rediss://redis.example:6380/0")
    assert load_settings().redis_url == "rediss://redis.example:6380/0"


def test_the_service_reads_alerts_from_redis_over_tls_with_a_password(tmp_path: Path) -> None:
    with tls_redis(tmp_path, REDIS_PASSWORD) as (port, ca):
        url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
        writer = redis.Redis.from_url(url, password=REDIS_PASSWORD, decode_responses=True)
        alert = Alert("default", "2024-03-04", "no_trade", "info", "tls check: nothing to do")
        writer.xadd("rt:alerts", {"json": alert.to_json()})
        writer.close()
        password_file = tmp_path / "redis-password"
        password_file.write_text(REDIS_PASSWORD, encoding="utf-8")
        env = clean_env() | {
            "REDIS_URL": url,
            "REDIS_PASSWORD_FILE": str(password_file),
            # Keys, so no embedded emulator starts; `alerts` never calls the broker.
            "ALPACA_API_KEY_ID": KEY_ID,
            "ALPACA_API_SECRET_KEY": SECRET_KEY,
            "RT_ALPACA_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "RT_DATA_DIR": str(tmp_path / "data"),
            "RT_LOG_FORMAT": "json",
        }
        shown = run_cli("alerts", "--count", "1", "--json", env=env, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert Alert.from_json(shown.stdout.strip().splitlines()[-1]).summary == alert.summary
        assert not _leaks(shown.stdout + shown.stderr)

        # It really is TLS: a plain-text client cannot talk to that port.
        plain = redis.Redis(port=port, password=REDIS_PASSWORD, socket_connect_timeout=2)
        with pytest.raises(redis.RedisError):
            plain.ping()
        plain.close()
