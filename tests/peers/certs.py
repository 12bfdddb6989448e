"""A throw-away TLS certificate for loopback tests and benchmarks (needs the ``cryptography`` package)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path


def trusting_client() -> ssl.SSLContext:
    """A TLS client context that accepts any certificate (a test's self-signed one), as trust-all-certs does."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def self_signed(tmp: Path) -> tuple[Path, Path, Path]:
    """A certificate for 127.0.0.1 and localhost as PEM files (cert.pem, key.pem, and both in one file, both.pem) and as a PKCS12
    keystore (ks.p12, password 'secret')."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem, p12 = tmp / "cert.pem", tmp / "key.pem", tmp / "ks.p12"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    p12.write_bytes(pkcs12.serialize_key_and_certificates(b"server", key, cert, None,
                                                          serialization.BestAvailableEncryption(b"secret")))
    (tmp / "both.pem").write_bytes(cert_pem.read_bytes() + key_pem.read_bytes())
    return cert_pem, key_pem, p12
