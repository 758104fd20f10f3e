"""docs/clients.md and docs/https.md for clients in other languages (issue 25), run as a user runs them.

The page's ``http`` blocks are saved as ``requests/*.http``; its Node test and Java program (its ``js``
and ``java`` blocks, unchanged) start a real ``mockcre serve --port 0 --tls``, send every request, and
check the journal over the admin API. Each runs twice, a new server each time, with one trust set-up
made before the first: the kept CA survives the restart. A runtime that is missing skips its test,
except in CI (``CI=true``), where it fails: the README's test command installs both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mockcre.faces import tls

from httpkit import free_port
from servekit import kill_group, mockcre_command, ready_line, run_cli, start_serve

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
REQUEST_FILE = re.compile(r"`requests/([\w.-]+\.http)`:\n\n```http\n(.*?)^```", re.M | re.S)


def needs(*programs: str):
    """Skip when a runtime is missing on a developer's machine; in CI a missing runtime is a failure."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"{', '.join(missing)} missing in CI: the README's test command installs them")
    return pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed")


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(PAGE) if lang == language]


@pytest.fixture
def workdir(tmp_path):
    """A client project's folder: ``requests/`` from the page, and ``mockcre`` first on PATH."""
    requests = tmp_path / "requests"
    requests.mkdir()
    for name, text in REQUEST_FILE.findall(PAGE):
        (requests / name).write_text(text, encoding="utf-8")
    return tmp_path


def client_env(**extra) -> dict:
    command = mockcre_command()
    return {**os.environ, "MOCKCRE": command[0] if len(command) == 1 else shutil.which("mockcre"), **extra}


def test_the_page_has_a_request_of_every_kind_and_each_is_accepted(workdir):
    """cre item, action, query, test upload and query; dm item, action, service 0-4: checked here in Python
    too, so a wrong body fails with its message even where Java and Node are missing."""
    import requests

    from mockcre.testing import MockcreServer

    files = sorted((workdir / "requests").glob("*.http"))
    kinds = []
    with MockcreServer(scenario="shop", accounts=["cre:my-token", "dm:shop=secret-token"]) as mock:
        for file in files:
            head, body = file.read_text(encoding="utf-8").split("\n\n", 1)
            method, path = head.splitlines()[0].split(" ")
            reply = requests.request(method, mock.url + path, data=body.encode(), timeout=10,
                                     headers={"Content-Type": "application/json"}).json()
            assert reply["code"] in ("0", 0), (file.name, reply)
            entry = mock.journal[-1]
            kinds.append((entry["endpoint"], entry["kind"], json.loads(body).get("service_type")))
    assert kinds == [("cre.upload", "item", None), ("cre.upload", "action", None), ("cre.query", "query", None),
                     ("cre.test_upload", "item", None), ("cre.test_query", "query", None),
                     ("dm.data", "item", None), ("dm.data", "action", None),
                     *(("dm.service", "recommend", n) for n in range(5))]


@needs("node")
def test_the_node_test_passes_with_node_extra_ca_certs_across_a_restart(workdir):
    [program] = blocks("js")
    (workdir / "mockcre.test.mjs").write_text(program, encoding="utf-8")
    ca = run_cli("ca", "path", timeout=30).stdout.strip()
    for run in ("first", "after a restart"):
        done = subprocess.run(["node", "--test", "mockcre.test.mjs"], cwd=workdir, capture_output=True, text=True,
                              timeout=120, env=client_env(NODE_EXTRA_CA_CERTS=ca), stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and "# pass 2" in done.stdout, (run, done.stdout[-3000:], done.stderr[-2000:])
    untrusting = subprocess.run(["node", "--test", "mockcre.test.mjs"], cwd=workdir, capture_output=True, text=True,
                                timeout=120, env=client_env(SSL_CERT_FILE=ca), stdin=subprocess.DEVNULL)
    assert untrusting.returncode != 0 and "# pass 0" in untrusting.stdout  # SSL_CERT_FILE: fetch does not trust it


def java_home() -> Path:
    return Path(os.path.realpath(shutil.which("java"))).parent.parent


@pytest.mark.slow
@needs("java", "keytool")
def test_the_java_program_passes_with_the_exported_truststore_across_a_restart(workdir):
    [program] = blocks("java")
    (workdir / "MockcreTest.java").write_text(program, encoding="utf-8")
    exported = run_cli("ca", "export", "--format", "pkcs12", "-o", "mockcre-truststore.p12", timeout=30, cwd=workdir)
    assert exported.returncode == 0 and "password changeit" in exported.stdout
    # the documented copy of the JDK's cacerts, with mockcre's CA added: the JDK's own CAs stay trusted
    shutil.copy(java_home() / "lib" / "security" / "cacerts", workdir / "cacerts-with-mockcre")
    os.chmod(workdir / "cacerts-with-mockcre", 0o644)
    imported = subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "mockcre", "-file",
                               run_cli("ca", "path", timeout=30).stdout.strip(), "-keystore", "cacerts-with-mockcre",
                               "-storepass", "changeit"], cwd=workdir, capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    listed = subprocess.run(["keytool", "-list", "-keystore", "cacerts-with-mockcre", "-storepass", "changeit"],
                            cwd=workdir, capture_output=True, text=True, timeout=60).stdout
    assert "mockcre," in listed and int(re.search(r"contains (\d+) entries", listed).group(1)) > 1
    for store in ("mockcre-truststore.p12", "mockcre-truststore.p12", "cacerts-with-mockcre"):  # twice: a restart
        done = subprocess.run(["java", f"-Djavax.net.ssl.trustStore={store}", "-Djavax.net.ssl.trustStorePassword=changeit",
                               "MockcreTest.java"], cwd=workdir, capture_output=True, text=True, timeout=180,
                              env=client_env(), stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and "12 requests accepted by https://127.0.0.1:" in done.stdout, (
            store, done.stdout[-2000:], done.stderr[-3000:])
    untrusting = subprocess.run(["java", "MockcreTest.java"], cwd=workdir, capture_output=True, text=True,
                                timeout=180, env=client_env(), stdin=subprocess.DEVNULL)
    assert untrusting.returncode != 0 and "PKIX path building failed" in untrusting.stderr


@needs("curl")
def test_one_server_answers_cre_over_https_and_dm_over_plain_http_at_the_documents_urls(tmp_path):
    """docs/https.md's recipe (``--port 8088 --tls-port 8008``) on free ports; curl resolves the real names."""
    https_page = (ROOT / "docs" / "https.md").read_text(encoding="utf-8")
    assert "mockcre serve --port 8088 --tls-port 8008 --scenario shop" in https_page
    assert "echo '127.0.0.1 sdtj.y.qq.com data.dm.qcloud.com service.dm.qcloud.com' | tee -a /etc/hosts" in https_page
    plain, secure = free_port(), free_port()
    proc = start_serve(tmp_path, "--port", str(plain), "--tls-port", str(secure), "--scenario", "shop")
    try:
        ready_line(proc)
        ca = tls.LocalCA.open().cert_path
        files = {}
        for name, text in REQUEST_FILE.findall(PAGE):
            files[name] = tmp_path / name
            files[name].write_text(text.split("\n\n", 1)[1], encoding="utf-8")

        def curl(*args: str) -> dict:
            done = subprocess.run(["curl", "-sS", "--max-time", "10", "-H", "Content-Type: application/json", *args],
                                  capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        cre = f"sdtj.y.qq.com:{secure}"
        assert curl("--cacert", str(ca), "--resolve", f"{cre}:127.0.0.1", f"https://{cre}/upload",
                    "-d", f"@{files['00-cre-item.http']}")["code"] == "0"
        data, service = f"data.dm.qcloud.com:{plain}", f"service.dm.qcloud.com:{plain}"
        assert curl("--resolve", f"{data}:127.0.0.1", f"http://{data}", "-d", f"@{files['05-dm-item.http']}")["code"] == 0
        ranked = curl("--resolve", f"{service}:127.0.0.1", f"http://{service}", "-d", f"@{files['10-dm-service-3.http']}")
        assert ranked["code"] == 0 and ranked["data"]
        query = curl("--cacert", str(ca), "--resolve", f"{cre}:127.0.0.1", f"https://{cre}/query",
                     "-d", f"@{files['02-cre-query.http']}")
        assert query["code"] == "0" and query["rec"]["sports"]
        with pytest.raises(AssertionError, match="SSL|certificate"):  # the HTTPS door wants the CA
            curl("--resolve", f"{cre}:127.0.0.1", f"https://{cre}/query", "-d", f"@{files['02-cre-query.http']}")
    finally:
        kill_group(proc)
