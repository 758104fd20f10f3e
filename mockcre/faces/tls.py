"""Certificates for serving HTTPS like the real hosts, so a client keeps its https:// URL.

A client that talks to ``https://sdtj.y.qq.com:8008`` checks the server's certificate against the
name it dials. :class:`LocalCA` keeps one CA in the user's data directory, as mkcert does, and
:func:`from_local_ca` makes a server certificate from it at each start for the real hosts and
loopback: a client trusts the CA once (``curl --cacert``, ``NODE_EXTRA_CA_CERTS``, a Java
truststore) and keeps trusting it across restarts, never turning verification off.
:func:`make_local` makes a throwaway CA instead (``--tls-ephemeral``); :func:`from_files` takes a
certificate and key the user already has.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import platform
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: The names a made certificate always covers: loopback, and the real hosts a hosts-file line points here.
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1", "sdtj.y.qq.com", "data.dm.qcloud.com", "service.dm.qcloud.com")
DEFAULT_CA_OUT = "mockcre-ca.pem"  # where --tls-ephemeral writes its CA certificate unless --tls-ca-out says
CA_DIR_ENV = "MOCKCRE_CA_DIR"  # the local CA's folder when set (tests point it at a temporary one)
CA_CERT_NAME, CA_KEY_NAME = "rootCA.pem", "rootCA-key.pem"  # mkcert's names, familiar to its users
JAVA_STORE_PASSWORD = "changeit"  # the JDK's own cacerts password: what Java users try first
#: Files that mark a project folder, where the CA key must never land.
PROJECT_MARKERS = (".git", ".hg", "pyproject.toml", "setup.py", "pom.xml", "build.gradle", "build.gradle.kts",
                   "package.json", "go.mod", "composer.json", "Cargo.toml")


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


class LocalCA:
    """A CA kept in a folder across runs, as mkcert keeps one, so a client that trusted it once keeps working.

    ``rootCA.pem`` is the certificate clients trust; ``rootCA-key.pem`` its key, readable by its owner only
    (0600, in a 0700 folder), read to sign each start's server certificate and never served or copied.
    The folder is :func:`default_ca_dir` unless given; it may not lie inside a project (a folder with
    ``.git``, ``pom.xml``, ``package.json``…), where the key would be committed with the code.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.cert_path = folder / CA_CERT_NAME
        self.key_path = folder / CA_KEY_NAME

    @classmethod
    def open(cls, folder: Path | str | None = None) -> "LocalCA":
        """The CA in ``folder`` (default :func:`default_ca_dir`), made there on first use."""
        found = cls(Path(folder or default_ca_dir()).expanduser().absolute())
        _refuse_project_folder(found.folder)
        try:
            found.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            with _locked(found.folder / ".lock"):  # parallel first starts (pytest-xdist) must agree on one CA
                if not found.cert_path.exists() or not found.key_path.exists():
                    found._create()
                if found.key_path.stat().st_mode & 0o077:
                    os.chmod(found.key_path, 0o600)  # a key others could read (copied by hand): owner only again
        except OSError as exc:
            raise CertificateError(f"cannot keep the local CA in {found.folder}: {exc.strerror or exc} "
                                   f"(choose another folder with --tls-ca-dir or ${CA_DIR_ENV})") from None
        return found

    def _create(self) -> None:
        import trustme

        ca = trustme.CA(organization_name="mockcre local CA", organization_unit_name=f"{_user_name()} on {platform.node()}")
        _write_private(self.key_path, ca.private_key_pem.bytes())
        self.cert_path.write_bytes(ca.cert_pem.bytes())

    def signer(self):
        """The CA as a ``trustme.CA`` that can issue certificates (its key loaded from the folder)."""
        import trustme

        try:
            return trustme.CA.from_pem(self.cert_path.read_bytes(), self.key_path.read_bytes())
        except ValueError as exc:
            raise CertificateError(f"the local CA in {self.folder} does not load ({exc}); delete the folder and "
                                   "trust the new CA that the next start makes") from None

    def certificate(self):
        """The CA certificate as a ``cryptography`` object (for exports)."""
        from cryptography import x509

        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    def export(self, out: Path, fmt: str, password: str = JAVA_STORE_PASSWORD) -> None:
        """Write the CA certificate as PEM, or as a PKCS12 truststore Java loads (trusted entry ``mockcre``)."""
        if fmt == "pem":
            out.write_bytes(self.cert_path.read_bytes())
            return
        from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

        entry = pkcs12.PKCS12Certificate(self.certificate(), b"mockcre")
        out.write_bytes(pkcs12.serialize_java_truststore([entry], BestAvailableEncryption(password.encode())))


def default_ca_dir() -> Path:
    """Where the local CA lives: ``$MOCKCRE_CA_DIR``, else ``ca`` in the user's data directory
    (platformdirs: ``$XDG_DATA_HOME/mockcre`` or ``~/.local/share/mockcre`` on Linux)."""
    if os.environ.get(CA_DIR_ENV):
        return Path(os.environ[CA_DIR_ENV])
    import platformdirs

    return platformdirs.user_data_path("mockcre") / "ca"


def _refuse_project_folder(folder: Path) -> None:
    for place in (folder, *folder.parents):
        marker = next((name for name in PROJECT_MARKERS if (place / name).exists()), None)
        if marker:
            raise CertificateError(f"the local CA's private key would be written into the project at {place} "
                                   f"(it has {marker}), where it could be committed; keep the CA outside any "
                                   f"project (default {_default_hint()})")


def _default_hint() -> str:
    import platformdirs

    return str(platformdirs.user_data_path("mockcre") / "ca")


def _user_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` for the block (``fcntl``; where it is missing, no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only, from its first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _issue(ca, folder: Path, names, ca_path: Path) -> Certificates:
    """A server certificate for :data:`DEFAULT_NAMES` plus ``names`` from ``ca``, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert(*dict.fromkeys((*DEFAULT_NAMES, *names)), organization_name="mockcre")
    cert_path, key_path = folder / "mockcre-server.pem", folder / "mockcre-server.key"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    _write_private(key_path, leaf.private_key_pem.bytes())
    return Certificates(cert_path, key_path, ca_path)


def make_local(folder: Path, names=(), ca_out: Path | None = None) -> Certificates:
    """A throwaway CA (``--tls-ephemeral``) and a certificate signed by it, written into ``folder``.

    The CA certificate goes to ``ca_out`` (default: ``folder``); its key is never written, so nothing
    else can be signed with it once this process ends.
    """
    import trustme

    ca = trustme.CA(organization_name="mockcre throwaway CA")
    ca_path = ca_out or folder / DEFAULT_CA_OUT
    certificates = _issue(ca, folder, names, ca_path)
    _copy_ca(ca.cert_pem.bytes(), ca_path)
    return certificates


def from_local_ca(local: LocalCA, folder: Path, names=(), ca_out: Path | None = None) -> Certificates:
    """A server certificate made now by the kept CA ``local`` (written into ``folder``); ``ca_out`` gets a copy
    of the CA certificate, for clients that look for it beside the project."""
    certificates = _issue(local.signer(), folder, names, local.cert_path)
    if ca_out is not None:
        _copy_ca(local.cert_path.read_bytes(), ca_out)
    return certificates


def _copy_ca(pem: bytes, ca_path: Path) -> None:
    try:
        ca_path.write_bytes(pem)
    except OSError as exc:
        raise CertificateError(f"cannot write the CA certificate to {ca_path}: {exc.strerror}") from None


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
    """How to make each runtime trust ``ca_path``, for the start-up output (``base``: an https URL of the server).

    docs/https.md explains each line.
    """
    store = "mockcre-truststore.p12"
    return [
        f"  {'trust this CA':<30} {ca_path}",
        f"    curl:    curl --cacert {ca_path} {base}/__admin/health",
        f"    Python:  export REQUESTS_CA_BUNDLE={ca_path} SSL_CERT_FILE={ca_path}",
        f"    Node:    export NODE_EXTRA_CA_CERTS={ca_path}",
        f"    Go:      export SSL_CERT_FILE={ca_path}",
        f"    Java:    mockcre ca export --format pkcs12 -o {store}   (password {JAVA_STORE_PASSWORD})",
        f"             java -Djavax.net.ssl.trustStore={store} -Djavax.net.ssl.trustStorePassword={JAVA_STORE_PASSWORD} "
        "...   (replaces the JDK's CAs; to keep them, import into a copy of cacerts: docs/https.md)",
        f"    PHP and the system (Debian, root): cp {ca_path} /usr/local/share/ca-certificates/mockcre.crt "
        "&& update-ca-certificates",
    ]


@contextlib.contextmanager
def serving_certificates(cert: str | None = None, key: str | None = None, names=(), ca_out: str | None = None,
                         ca_dir: str | None = None, ephemeral: bool = False):
    """The certificates of a server while it runs: the user's files; else a server certificate made now by the
    kept local CA (or, ``ephemeral``, by a throwaway one). The made server certificate and key are removed when
    it stops; the CA certificate stays, for clients to keep trusting."""
    if cert:
        yield from_files(cert, key)
        return
    with tempfile.TemporaryDirectory(prefix="mockcre-tls-") as folder:
        if ephemeral:
            yield make_local(Path(folder), names, Path(ca_out or DEFAULT_CA_OUT).resolve())
        else:
            yield from_local_ca(LocalCA.open(ca_dir), Path(folder), names, Path(ca_out).resolve() if ca_out else None)


# -- the command-line options ---------------------------------------------------------------------


def add_options(parser) -> None:
    """``--tls`` and its companions on an argparse parser, the same for ``serve`` and ``proxy``."""
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS, as the real hosts do, so a client keeps its https:// URL")
    parser.add_argument("--tls-cert", metavar="FILE", help="certificate chain (PEM) to serve; default: one made now "
                                                            "for loopback, the real hosts and --tls-name, by the local CA")
    parser.add_argument("--tls-key", metavar="FILE", help="the private key (PEM) of --tls-cert")
    add_ca_dir_option(parser)
    parser.add_argument("--tls-ephemeral", action="store_true",
                        help="use a throwaway CA made at this start instead of the kept one (its key is never written)")
    parser.add_argument("--tls-ca-out", metavar="FILE",
                        help="also write the CA's certificate to FILE (with --tls-ephemeral: default ./mockcre-ca.pem)")
    parser.add_argument("--tls-name", action="append", default=[], metavar="NAME",
                        help="one more host name or IP address the made certificate covers (repeatable)")


def add_ca_dir_option(parser) -> None:
    parser.add_argument("--tls-ca-dir", metavar="DIR", help=f"the folder of the kept local CA (default ${CA_DIR_ENV}, "
                                                            "else the user's data directory, e.g. ~/.local/share/mockcre/ca)")


def _tls_wanted(args) -> bool:
    return args.tls or getattr(args, "tls_port", None) is not None  # proxy has no --tls-port


def problem_with(args) -> str | None:
    """What is wrong with the TLS options together, if anything."""
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls-cert and --tls-key go together"
    made_only = [flag for flag, given in (("--tls-name", args.tls_name), ("--tls-ca-out", args.tls_ca_out),
                                          ("--tls-ca-dir", args.tls_ca_dir), ("--tls-ephemeral", args.tls_ephemeral))
                 if given]
    if args.tls_cert and made_only:
        return f"{', '.join(made_only)} describe the certificate mockcre makes; with --tls-cert it makes none"
    if args.tls_ephemeral and args.tls_ca_dir:
        return "--tls-ephemeral makes a throwaway CA; --tls-ca-dir names a kept one: choose one"
    if getattr(args, "tls_port", None) == args.port:
        return f"--tls-port {args.port} is --port too; HTTPS and plain HTTP need a port each"
    if not _tls_wanted(args) and (args.tls_cert or made_only):
        return "--tls-cert, --tls-key, --tls-name, --tls-ca-out, --tls-ca-dir and --tls-ephemeral need --tls"
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
    return serving_certificates(args.tls_cert, args.tls_key, args.tls_name, args.tls_ca_out, args.tls_ca_dir,
                                args.tls_ephemeral)
