"""``mockcre serve --tls`` and ``mockcre proxy --tls`` (issue 17): an unmodified https client against the mock.

Real processes on free 127.0.0.1 ports (killed with their process group at teardown), real clients:
curl with ``--resolve`` dials the real host names without touching /etc/hosts, and ``requests``
verifies against the CA the server wrote. Every call is bounded.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest
import requests
import trustme
from cryptography import x509

import mockcre
from mockcre.faces import tls
from mockcre.faces.server import ThreadedServer

from httpkit import TIMEOUT, cre_item, cre_query, cre_upload, dm_item, dm_recommend, free_port, start, stop_soon
from conftest import need_tools
from servekit import ServeProcess, run_cli, started_servers

CRE_HOST = "sdtj.y.qq.com"

needs_curl = pytest.mark.usefixtures("curl_installed")


@pytest.fixture
def curl_installed() -> str:
    return need_tools("curl", install="apt-get install curl")[0]


class HttpsServe(ServeProcess):
    """``mockcre serve --tls ...`` whose requests (the health check too) go over HTTPS, trusting ``ca``."""

    def __init__(self, workdir: Path, *args: str, ca: Path, **kwargs):
        self.ca = ca
        super().__init__(workdir, "--tls", *args, **kwargs)
        self.url = f"https://127.0.0.1:{self.port}"

    def connection(self, timeout=None) -> http.client.HTTPSConnection:
        # made anew each time: the CA file appears only once the server has written it
        context = ssl.create_default_context(cafile=str(self.ca))
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=context,
                                           timeout=self.timeout if timeout is None else timeout)


@pytest.fixture
def https_serve(tmp_path):
    """Factory: ``https_serve(*args)`` → a ready ``mockcre serve --tls`` whose kept CA is in ``tmp_path/ca``
    (with ``--tls-ephemeral``: a throwaway CA written to ``tmp_path/ca.pem``)."""

    with started_servers(HttpsServe, tmp_path) as start_server:
        def make(*args: str, ca: Path | None = None) -> HttpsServe:
            if "--tls-cert" in args:
                extra = ()
            elif "--tls-ephemeral" in args:
                ca, extra = tmp_path / "ca.pem", ("--tls-ca-out", str(tmp_path / "ca.pem"))
            else:
                ca, extra = tmp_path / "ca" / tls.CA_CERT_NAME, ("--tls-ca-dir", str(tmp_path / "ca"))
            return start_server(*args, *extra, ca=ca, cwd=tmp_path)

        yield make


@pytest.fixture
def serve(tmp_path):
    with started_servers(ServeProcess, tmp_path) as start_server:
        yield start_server


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=20,
                          stdin=subprocess.DEVNULL)


def curl_post(host: str, port: int, path: str, body: dict, ca: Path) -> subprocess.CompletedProcess:
    """POST ``body`` to ``https://host:port/path``, ``host`` resolved to 127.0.0.1 by curl alone."""
    return curl("--resolve", f"{host}:{port}:127.0.0.1", "--cacert", str(ca), "-H", "Content-Type: application/json",
                "--data-binary", json.dumps(body), f"https://{host}:{port}{path}")


def journal(url: str, ca: Path | None = None) -> list[dict]:
    resp = requests.get(url + "/__admin/journal", verify=str(ca) if ca else True, timeout=TIMEOUT)
    assert resp.status_code == 200
    return resp.json()["entries"]


# -- the made certificate --------------------------------------------------------------------


def test_the_made_certificate_covers_loopback_the_real_hosts_and_extra_names(tmp_path):
    certs = tls.make_local(tmp_path, ["mock.internal", "10.1.2.3"])
    served = x509.load_pem_x509_certificate(certs.cert_path.read_bytes())  # the chain's first: the server's own
    san = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName)) | {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert names == {"localhost", "127.0.0.1", "::1", CRE_HOST, "data.dm.qcloud.com", "service.dm.qcloud.com",
                     "mock.internal", "10.1.2.3"}
    assert certs.key_path.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" not in certs.ca_path.read_text()  # clients get the CA certificate, never its key
    certs.server_context()  # the pair loads as a server certificate
    assert certs.client_context().verify_mode == ssl.CERT_REQUIRED


def test_the_in_process_server_serves_https_and_a_silent_client_holds_up_no_one(tmp_path):
    """ThreadedServer (the pytest handle's server) over TLS: handshakes happen per connection, not in accept."""
    certs = tls.make_local(tmp_path)
    server = ThreadedServer(mockcre.create_app(), ssl_context=certs.server_context()).start()
    try:
        assert server.url == f"https://127.0.0.1:{server.port}"
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT):  # connects, never says hello
            resp = requests.post(server.url + "/dm/data", json=dm_item("a"), verify=str(certs.ca_path), timeout=5)
        assert resp.json()["code"] == 0
        entry = requests.get(server.url + "/__admin/journal", verify=str(certs.ca_path), timeout=TIMEOUT).json()
        assert [e["endpoint"] for e in entry["entries"]] == ["dm.data"]
    finally:
        stop_soon(server)


# -- mockcre serve --tls ------------------------------------------------------------------------


@needs_curl
def test_curl_and_requests_reach_the_cre_host_over_https(https_serve):
    server = https_serve("--tls-name", "mock.internal")
    out = server.stdout()
    assert f"serving both dialects on https://127.0.0.1:{server.port}" in out
    for line in (f"curl --cacert {server.ca}", f"REQUESTS_CA_BUNDLE={server.ca}", f"SSL_CERT_FILE={server.ca}",
                 f"NODE_EXTRA_CA_CERTS={server.ca}", "mockcre ca export --format pkcs12 -o mockcre-truststore.p12",
                 f"cp {server.ca} /usr/local/share/ca-certificates/mockcre.crt && update-ca-certificates"):
        assert line in out, out
    done = curl_post(CRE_HOST, server.port, "/upload", cre_upload("1", [cre_item("a"), cre_item("b")]), server.ca)
    assert done.returncode == 0 and json.loads(done.stdout)["code"] == "0", done.stderr
    done = curl_post(CRE_HOST, server.port, "/query", cre_query(), server.ca)
    assert done.returncode == 0, done.stderr
    by_curl = json.loads(done.stdout)
    assert by_curl["code"] == "0" and {e["id"] for e in by_curl["rec"]["0"]} == {"a", "b"}
    resp = requests.post(server.url + "/query", json=cre_query(), verify=str(server.ca), timeout=TIMEOUT)
    assert resp.json()["rec"] == by_curl["rec"]
    hosts = [e["headers"]["Host"] for e in journal(server.url, server.ca)]
    assert hosts == [f"{CRE_HOST}:{server.port}"] * 2 + [f"127.0.0.1:{server.port}"]
    done = curl("--resolve", f"mock.internal:{server.port}:127.0.0.1", "--cacert", str(server.ca),
                f"https://mock.internal:{server.port}/__admin/health")
    assert done.returncode == 0 and json.loads(done.stdout) == {"status": "ok"}, done.stderr  # --tls-name covered


@needs_curl
def test_a_client_that_does_not_trust_the_ca_is_refused(https_serve):
    server = https_serve()
    done = curl("--resolve", f"{CRE_HOST}:{server.port}:127.0.0.1", f"https://{CRE_HOST}:{server.port}/query")
    assert done.returncode == 60, (done.returncode, done.stderr)  # curl: peer certificate cannot be authenticated
    session = requests.Session()
    session.trust_env = False  # the system's CAs only, whatever REQUESTS_CA_BUNDLE says
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        session.post(server.url + "/query", json=cre_query(), timeout=TIMEOUT)
    assert journal(server.url, server.ca) == []  # nothing got through; and the server is up


@needs_curl
def test_dm_posts_to_the_root_are_routed_by_the_host_name_over_tls(https_serve):
    """Each body would be routed the other way by its shape: only the Host header can route them so."""
    server = https_serve()
    for host, body in (("data.dm.qcloud.com", dm_recommend()), ("service.dm.qcloud.com", dm_item("a"))):
        done = curl_post(host, server.port, "/", body, server.ca)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["code"] == -1  # the wrong body for the host
    assert [e["endpoint"] for e in journal(server.url, server.ca)] == ["dm.data", "dm.service"]
    done = curl_post("data.dm.qcloud.com", server.port, "/", dm_item("a"), server.ca)
    assert json.loads(done.stdout)["code"] == 0


def test_the_admin_api_and_journal_work_over_https(https_serve):
    server = https_serve()
    verify = str(server.ca)
    assert requests.post(server.url + "/dm/data", json=dm_item("a"), verify=verify, timeout=TIMEOUT).json()["code"] == 0
    assert [e["endpoint"] for e in journal(server.url, server.ca)] == ["dm.data"]
    state = requests.get(server.url + "/__admin/state", verify=verify, timeout=TIMEOUT).json()
    assert "a" in json.dumps(state)
    assert requests.post(server.url + "/__admin/reset", verify=verify, timeout=TIMEOUT).status_code == 200
    assert journal(server.url, server.ca) == []
    dashboard = requests.get(server.url + "/__admin/", verify=verify, timeout=TIMEOUT)
    assert dashboard.status_code == 200 and "text/html" in dashboard.headers["Content-Type"]


@needs_curl
def test_a_certificate_of_ones_own_is_served(https_serve, tmp_path):
    ca = trustme.CA()
    own = ca.issue_cert("mock.example.test", "127.0.0.1")  # 127.0.0.1: for the health check
    cert, key, own_ca = tmp_path / "own.pem", tmp_path / "own.key", tmp_path / "own-ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in own.cert_chain_pems))
    own.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(own_ca))
    server = https_serve("--tls-cert", str(cert), "--tls-key", str(key), ca=own_ca)
    done = curl_post("mock.example.test", server.port, "/dm/data", dm_item("a"), own_ca)
    assert done.returncode == 0 and json.loads(done.stdout)["code"] == 0, done.stderr
    assert "trust this CA" not in server.stdout()
    assert not (tmp_path / tls.DEFAULT_CA_OUT).exists()  # no CA made, none written


def test_a_stopped_server_leaves_its_key_nowhere(https_serve, tmp_path, monkeypatch):
    made = tmp_path / "tmp"
    made.mkdir()
    monkeypatch.setenv("TMPDIR", str(made))
    server = https_serve()
    assert [p.name[:12] for p in made.iterdir()] == ["mockcre-tls-"]  # the key's folder, while it serves
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0
    assert list(made.iterdir()) == []
    assert server.ca.exists()  # clients may still hold it
    assert not list(tmp_path.glob("*.pem"))  # the kept CA writes nothing into the working folder


def test_tls_port_serves_https_beside_plain_http_with_one_state(serve, tmp_path):
    ca = tmp_path / "ca.pem"
    tls_port = free_port()
    server = serve("--tls-port", str(tls_port), "--tls-ephemeral", "--tls-ca-out", str(ca))
    plain, secure = server.url, f"https://127.0.0.1:{tls_port}"
    assert f"the same over plain HTTP       {plain}/" in server.stdout()
    reported = requests.post(plain + "/upload", json=cre_upload("1", [cre_item("over-http")]), timeout=TIMEOUT)
    assert reported.json()["code"] == "0"
    recommended = requests.post(secure + "/query", json=cre_query(), verify=str(ca), timeout=TIMEOUT).json()
    assert [e["id"] for e in recommended["rec"]["0"]] == ["over-http"]
    assert [e["endpoint"] for e in journal(plain)] == ["cre.upload", "cre.query"]
    assert requests.post(secure + "/__admin/reset", verify=str(ca), timeout=TIMEOUT).status_code == 200
    assert journal(plain) == [] and journal(secure, ca) == []
    with pytest.raises(requests.exceptions.SSLError):  # each port speaks its own protocol only
        requests.get(f"https://127.0.0.1:{server.port}/__admin/health", verify=str(ca), timeout=TIMEOUT)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_port}/__admin/health", timeout=TIMEOUT)
    server.proc.send_signal(signal.SIGINT)  # the plain door's thread does not hold the worker up
    assert server.proc.wait(timeout=10) == 0
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(plain + "/__admin/health", timeout=TIMEOUT)


@pytest.mark.parametrize("args, message", [
    (["--tls", "--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
    (["--tls-name", "mock.internal"], "need --tls"),
    (["--tls", "--tls-cert", "x.pem", "--tls-key", "x.key", "--tls-name", "n"], "with --tls-cert it makes none"),
    (["--tls", "--tls-cert", "missing.pem", "--tls-key", "missing.key"], "do not load"),
    (["--tls", "--tls-ca-out", "no/such/folder/ca.pem"], "cannot write the CA certificate"),
    (["--tls", "--tls-ephemeral", "--tls-ca-dir", "ca"], "choose one"),
    (["--tls", "--tls-cert", "x.pem", "--tls-key", "x.key", "--tls-ephemeral"], "with --tls-cert it makes none"),
    (["--tls-ca-dir", "ca"], "need --tls"),
    (["--tls", "--tls-ca-dir", "project/ca"], "into the project at"),
    (["--tls", "--tls-ca-dir", "file/ca"], "cannot keep the local CA in"),
])
@pytest.mark.parametrize("command", ["serve", "proxy"])
def test_wrong_tls_options_exit_2_with_one_line(command, args, message, tmp_path):
    extra = ["--upstream", "http://127.0.0.1:1"] if command == "proxy" else []
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "package.json").write_text("{}")
    (tmp_path / "file").write_text("a file where the CA's folder would go")
    done = run_cli(command, *extra, *args, "--port", str(free_port()), timeout=20, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_tls_port_must_differ_from_port():
    port = str(free_port())
    done = run_cli("serve", "--port", port, "--tls-port", port, timeout=20)
    assert done.returncode == 2 and "need a port each" in done.stderr


# -- mockcre proxy --tls --------------------------------------------------------------------------


@needs_curl
def test_proxy_with_tls_keeps_the_https_url_and_forwards(tmp_path):
    upstream = start()
    ca = tmp_path / "proxy-ca.pem"
    try:
        with started_servers(ProxyServe, tmp_path) as start_proxy:
            proxy = start_proxy("--upstream", upstream.url, "--tls-ephemeral", "--tls-ca-out", str(ca), ca=ca)
            assert f"proxy on https://127.0.0.1:{proxy.port} -> {upstream.url}" in proxy.stdout()
            done = curl_post(CRE_HOST, proxy.port, "/upload", cre_upload("1", [cre_item("a")]), ca)
            assert json.loads(done.stdout)["code"] == "0", done.stderr
            done = curl_post(CRE_HOST, proxy.port, "/query", cre_query(), ca)
            assert [e["id"] for e in json.loads(done.stdout)["rec"]["0"]] == ["a"], done.stderr
            assert [e["endpoint"] for e in journal(upstream.url)] == ["cre.upload", "cre.query"]
            seen = journal(proxy.url, ca)
            assert [e["upstream"]["url"] for e in seen] == [upstream.url + "/upload", upstream.url + "/query"]
    finally:
        stop_soon(upstream)


class ProxyServe(HttpsServe):
    """``mockcre proxy --tls ...`` (the arguments name the upstream)."""

    command = "proxy"


def test_the_test_handle_serves_https_from_the_kept_ca():
    from mockcre.testing import MockcreServer

    with MockcreServer(scenario="shop", tls=True) as mock:
        assert mock.url.startswith("https://127.0.0.1:")
        body = {"seq_no": "1", "token": "t", "proj_id": "1", "scn_id": "2", "uid_type": "5", "user_id": ""}
        reply = requests.post(mock.url + "/query", json=body, verify=str(mock.ca_path), timeout=TIMEOUT).json()
        assert reply["code"] == "0" and reply["seq_no"] == "1"
        with urllib.request.urlopen(urllib.request.Request(mock.url + "/__admin/health"), timeout=TIMEOUT,
                                    context=mock.ssl_context()) as answer:
            assert json.load(answer) == {"status": "ok"}
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(mock.url + "/query", json=body, timeout=TIMEOUT)  # not trusted without the CA
        mock.assert_called("cre.query", times=1)
    with pytest.raises(RuntimeError):
        MockcreServer().ssl_context()
    assert mock.ca_path == tls.LocalCA.open().cert_path  # the environment's CA folder (conftest: a temporary one)


@pytest.mark.mockcre(tls=True, scenario="shop")
def test_the_fixture_with_the_tls_marker(mockcre):
    assert mockcre.url.startswith("https://")
    reply = requests.post(mockcre.url + "/dm/service", timeout=TIMEOUT, verify=str(mockcre.ca_path),
                          json={"request_id": "1700000000000_1", "bid": "b_demo", "MD5": "0" * 32, "uid": "u",
                                "scene_id": "s", "pool_id": "0", "cid": "c"})
    assert reply.json()["code"] in (0, -3)
    mockcre.assert_called("dm.service")


# -- the kept local CA and mockcre ca ----------------------------------------------------------------


def test_the_kept_ca_is_made_once_with_a_private_key_and_signs_each_start(tmp_path):
    first = tls.LocalCA.open(tmp_path / "ca")
    assert first.key_path.stat().st_mode & 0o777 == 0o600 and first.folder.stat().st_mode & 0o777 == 0o700
    assert "PRIVATE KEY" not in first.cert_path.read_text()
    pem = first.cert_path.read_bytes()
    first.key_path.chmod(0o644)  # a key made readable by hand is made private again
    again = tls.LocalCA.open(tmp_path / "ca")
    assert again.cert_path.read_bytes() == pem and again.key_path.stat().st_mode & 0o777 == 0o600
    one = tls.from_local_ca(again, tmp_path / "one")
    two = tls.from_local_ca(again, tmp_path / "two")
    assert one.cert_path.read_bytes() != two.cert_path.read_bytes()  # a fresh server certificate each start
    for made in (one, two):
        assert made.ca_path == first.cert_path
        made.server_context()  # the pair loads
        served = x509.load_pem_x509_certificate(made.cert_path.read_bytes())
        assert served.issuer == x509.load_pem_x509_certificate(pem).subject


def test_the_ca_folder_follows_the_environment_else_the_users_data_directory(monkeypatch, tmp_path):
    monkeypatch.setenv(tls.CA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert tls.default_ca_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(tls.CA_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert tls.default_ca_dir() == tmp_path / "data" / "mockcre" / "ca"  # XDG rules (platformdirs), not made here


def test_ca_path_and_both_exports(tmp_path):
    ca_dir = str(tmp_path / "ca")
    done = run_cli("ca", "path", "--tls-ca-dir", ca_dir, timeout=20, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == f"{tmp_path / 'ca' / tls.CA_CERT_NAME}\n", done.stderr
    done = run_cli("ca", "export", "--tls-ca-dir", ca_dir, "--format", "pem", "-o", "out.pem", timeout=20, cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "out.pem").read_bytes() == (tmp_path / "ca" / tls.CA_CERT_NAME).read_bytes()
    done = run_cli("ca", "export", "--tls-ca-dir", ca_dir, "--format", "pkcs12", "-o", "store.p12", "--password", "s3cret",
                   timeout=20, cwd=tmp_path)
    assert done.returncode == 0 and "password s3cret" in done.stdout, done.stderr
    from cryptography.hazmat.primitives.serialization import pkcs12

    store = pkcs12.load_pkcs12((tmp_path / "store.p12").read_bytes(), b"s3cret")
    assert store.key is None and [c.certificate for c in store.additional_certs] == [
        x509.load_pem_x509_certificate((tmp_path / "out.pem").read_bytes())]
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12((tmp_path / "store.p12").read_bytes(), b"s3cre")  # one character short: refused
    done = run_cli("ca", "export", "--tls-ca-dir", ca_dir, "-o", "no/such/dir/x.pem", timeout=20, cwd=tmp_path)
    assert done.returncode == 2 and "cannot write no/such/dir/x.pem" in done.stderr


def test_restarting_serve_keeps_the_ca_a_client_trusted(https_serve):
    first = https_serve()
    trusted = first.ca.read_bytes()
    first.close()
    second = https_serve()
    assert second.ca.read_bytes() == trusted
    resp = requests.get(second.url + "/__admin/health", verify=str(second.ca), timeout=TIMEOUT)
    assert resp.json() == {"status": "ok"}
    ephemeral = https_serve("--tls-ephemeral")
    assert ephemeral.ca.read_bytes() != trusted  # today's throwaway CA, on request
