"""Certificates for serving HTTPS like the real hosts, so a client keeps its https:// URL.

A client that talks to ``https://sdtj.y.qq.com:8008`` or ``https://data.dm.qcloud.com`` checks the
server's certificate against the names it dials. :func:`make_local` makes a throwaway CA (trustme)
and a certificate from it for the real hosts and loopback, so the client only has to trust the CA
(``curl --cacert``, ``REQUESTS_CA_BUNDLE``, a Java truststore), never to turn verification off.
:func:`from_files` takes a certificate and key the user already has instead.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: The names a made certificate always covers: loopback, and the real hosts a hosts-file line points here.
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1", "sdtj.y.qq.com", "data.dm.qcloud.com", "service.dm.qcloud.com")
DEFAULT_CA_OUT = "mockcre-ca.pem"


class CertificateError(ValueError):
    """The certificate cannot be served or its CA not written: a usage error, told in one line."""


@dataclass(frozen=True)
class Certificates:
    """A server certificate chain and key as files (``ssl`` loads files), and the CA clients trust."""

    cert_path: Path
    key_path: Path
    ca_path: Path | None = None  # None: the user's own certificate, trusted however they already trust it

    def server_context(self) -> ssl.SSLContext:
        """A server-side context with the certificate loaded; raises ``ssl.SSLError`` or ``OSError`` if it does not load."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # Java 8 clients, still common with the SDK, stop at 1.2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the CA (for ``urllib``, ``http.client``, ``httpx``...)."""
        if self.ca_path is None:
            raise ValueError("this certificate was not made by mockcre: trust its issuer the way you already do")
        return ssl.create_default_context(cafile=str(self.ca_path))


def make_local(folder: Path, names=(), ca_out: Path | None = None) -> Certificates:
    """A new CA and a certificate signed by it for :data:`DEFAULT_NAMES` plus ``names``, written into ``folder``.

    The key is readable by its owner only. The CA certificate goes to ``ca_out`` (default: ``folder``);
    its key is never written, so nothing else can be signed with it once this process ends.
    """
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="mockcre local CA")
    leaf = ca.issue_cert(*dict.fromkeys((*DEFAULT_NAMES, *names)), organization_name="mockcre")
    cert_path, key_path = folder / "mockcre-server.pem", folder / "mockcre-server.key"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as key:
        key.write(leaf.private_key_pem.bytes())
    ca_path = ca_out or folder / DEFAULT_CA_OUT
    try:
        ca.cert_pem.write_to_path(str(ca_path))
    except OSError as exc:
        raise CertificateError(f"cannot write the CA certificate to {ca_path}: {exc.strerror}") from None
    return Certificates(cert_path, key_path, ca_path)


def from_files(cert: str, key: str) -> Certificates:
    """The user's certificate chain and key, checked now so a wrong file fails before anything listens."""
    found = Certificates(Path(cert).resolve(), Path(key).resolve())
    try:
        found.server_context()
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(f"--tls-cert {cert} / --tls-key {key} do not load as a certificate chain and its key: "
                               f"{exc}") from None
    return found


def trust_lines(ca_path: Path, base: str) -> list[str]:
    """How to make clients trust ``ca_path``, for the start-up output (``base`` is an https URL of the server)."""
    return [
        f"  {'trust this CA':<30} {ca_path}",
        f"    curl:     curl --cacert {ca_path} {base}/__admin/health",
        f"    Python:   export REQUESTS_CA_BUNDLE={ca_path} SSL_CERT_FILE={ca_path}",
        f"    Java:     rm -f mockcre-truststore.p12; keytool -importcert -noprompt -alias mockcre -file {ca_path} "
        "-keystore mockcre-truststore.p12 -storetype PKCS12 -storepass changeit",
        "              java -Djavax.net.ssl.trustStore=mockcre-truststore.p12 -Djavax.net.ssl.trustStorePassword=changeit …",
    ]


@contextlib.contextmanager
def serving_certificates(cert: str | None = None, key: str | None = None, names=(), ca_out: str | None = None):
    """The certificates of a server while it runs: the user's files, else made ones, removed when it stops
    (all but the CA certificate, which clients keep trusting until the next start)."""
    if cert:
        yield from_files(cert, key)
        return
    with tempfile.TemporaryDirectory(prefix="mockcre-tls-") as folder:
        yield make_local(Path(folder), names, Path(ca_out or DEFAULT_CA_OUT).resolve())


# -- the command-line options ---------------------------------------------------------------------


def add_options(parser) -> None:
    """``--tls`` and its companions on an argparse parser, the same for ``serve`` and ``proxy``."""
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS, as the real hosts do, so a client keeps its https:// URL")
    parser.add_argument("--tls-cert", metavar="FILE", help="certificate chain (PEM) to serve; default: one made now "
                                                            "for loopback, the real hosts and --tls-name, by a new local CA")
    parser.add_argument("--tls-key", metavar="FILE", help="the private key (PEM) of --tls-cert")
    parser.add_argument("--tls-ca-out", metavar="FILE",
                        help="where to write the made CA's certificate for clients to trust (default ./mockcre-ca.pem)")
    parser.add_argument("--tls-name", action="append", default=[], metavar="NAME",
                        help="one more host name or IP address the made certificate covers (repeatable)")


def _tls_wanted(args) -> bool:
    return args.tls or getattr(args, "tls_port", None) is not None  # proxy has no --tls-port


def problem_with(args) -> str | None:
    """What is wrong with the TLS options together, if anything."""
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls-cert and --tls-key go together"
    if args.tls_cert and (args.tls_name or args.tls_ca_out):
        return "--tls-name and --tls-ca-out describe the certificate mockcre makes; with --tls-cert it makes none"
    if getattr(args, "tls_port", None) == args.port:
        return f"--tls-port {args.port} is --port too; HTTPS and plain HTTP need a port each"
    if not _tls_wanted(args) and (args.tls_cert or args.tls_name or args.tls_ca_out):
        return "--tls-cert, --tls-key, --tls-name and --tls-ca-out need --tls"
    return None


def admin_host_names(args) -> list[str]:
    """The names a made certificate covers: a client that dials them (through a hosts-file line) reaches the
    admin API too, so they count as ``--allowed-host`` names (they are the user's own choice, not a page's)."""
    if not _tls_wanted(args) or args.tls_cert:
        return []
    return [name for name in dict.fromkeys((*DEFAULT_NAMES, *args.tls_name)) if not _is_address(name)]


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def certificates_for(args):
    """A context holding the certificates the options ask for while the server runs (``None``: plain HTTP)."""
    if not _tls_wanted(args):
        return contextlib.nullcontext()
    return serving_certificates(args.tls_cert, args.tls_key, args.tls_name, args.tls_ca_out)
