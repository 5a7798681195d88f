"""TLS: certificates are verified by default; a private CA is trusted only through the connection."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from airflow_provider_braze.exceptions import BrazeConfigurationError, BrazeTransportError
from airflow_provider_braze.hooks.braze import BrazeHook
from tests.conftest import API_KEY, braze_connection


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "braze-test-loopback")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    requests_seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Handler.requests_seen.append(self.headers.get("Authorization", ""))
        body = json.dumps({"message": "success", "send_id": "over-tls"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed_certificate(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.requests_seen = []
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


def test_untrusted_certificate_is_refused_and_not_retried(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    url, _ = https_server
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(host=url))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    unverified = r"the certificate of 127\.0\.0\.1:[0-9]+ could not be verified"
    with pytest.raises(BrazeTransportError, match=unverified) as err:
        BrazeHook().create_send_id("c", "s")
    assert "failed before the request was sent" in str(err.value)
    assert API_KEY not in str(err.value)
    assert Handler.requests_seen == []  # the key never left
    assert sleeps == []


def test_a_ca_trusted_through_the_connection_works(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = https_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")  # must not win
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(host=url, extra={"ca_bundle": str(cert)})
    )
    assert BrazeHook().create_send_id("c", "s") == "over-tls"
    assert Handler.requests_seen == [f"Bearer {API_KEY}"]


def test_ca_bundle_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(extra={"ca_bundle": str(tmp_path / "nope.pem")})
    )
    with pytest.raises(BrazeConfigurationError, match=r"ca_bundle .* is not a readable file"):
        _ = BrazeHook().settings
