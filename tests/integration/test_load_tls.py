"""crux load over https: keep-alive TLS sessions, streams, and certificate verification."""
import shutil
import subprocess

import pytest

from load_helpers import run_load, start_server


@pytest.fixture
def cert(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl command not installed")
    crt, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def test_https_keepalive_and_stream(crux, cert):
    crt, key = cert
    url, _ = start_server(crux, "basic", "--cert", crt, "--key", key)
    url = url.replace("http://", "https://")
    res, data = run_load(crux, url + "/", "-k", "--concurrency", "2", "--requests", "20")
    st = data["stats"]
    assert st["ok"] == 20 and st["errors"] == 0, res.stdout
    assert st["connections_opened"] == 2  # sessions kept alive
    # a self-signed certificate fails verification without -k: counted as connect errors
    res, data = run_load(crux, url + "/", "--requests", "3")
    assert data["stats"]["errors_by_class"]["connect"] == 3, res.stdout
    surl, _ = start_server(crux, "sse", "--tokens", "5", "--first", "0.05", "--gap", "0.01",
                           "--cert", crt, "--key", key)
    res, data = run_load(crux, surl.replace("http://", "https://") + "/", "-k", "-n", "3")
    st = data["stats"]
    assert st["ok"] == 3 and st["tokens"] == 15 and st["itl_us"]["count"] == 12, res.stdout
