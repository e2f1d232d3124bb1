"""Start-up configuration: keys are required unless signature checking is explicitly turned off, which the
server then announces loudly; flags and the TOML file are honoured."""

import os
import subprocess

import requests

from conftest import ROOT, Server, free_port


def binary():
    return os.environ.get("IAI_BIN", str(ROOT / "target" / "debug" / "iai-server"))


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IAI_")}
    env.update(extra)
    return env


def test_refuses_to_start_without_keys(tmp_path):
    done = subprocess.run([binary()], env=clean_env(IAI_DATA_DIR=str(tmp_path), IAI_LISTEN=f"127.0.0.1:{free_port()}"),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "IAI_SECRET_ID" in done.stderr


def test_refuses_a_missing_config_file(tmp_path):
    done = subprocess.run([binary(), "--config", str(tmp_path / "nope.toml")], env=clean_env(),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "nope.toml" in done.stderr


def test_missing_models_name_the_fix(tmp_path):
    env = clean_env(IAI_DATA_DIR=str(tmp_path / "data"), IAI_SECRET_ID="a", IAI_SECRET_KEY="b",
                    IAI_MODELS_DIR=str(tmp_path), IAI_LISTEN=f"127.0.0.1:{free_port()}")
    done = subprocess.run([binary()], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "manifest.json" in done.stderr
    (tmp_path / "manifest.json").write_text((ROOT / "models" / "manifest.json").read_text())
    done = subprocess.run([binary()], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "tools/fetch_models.py" in done.stderr


def test_signature_check_can_be_turned_off_explicitly(tmp_path):
    config = tmp_path / "iai.toml"
    config.write_text("disable_signature_check = true\nmax_body_bytes = 1000\n")
    srv = Server(tmp_path / "data", config)
    srv.start()
    try:
        headers = {"X-TC-Action": "CreateGroup", "X-TC-Version": "2018-03-01", "Content-Type": "application/json"}
        r = requests.post(srv.url, json={"GroupId": "open", "GroupName": "open"}, headers=headers, timeout=10)
        assert r.json()["Response"]["FaceModelVersion"] == "3.0", r.text
        r = requests.post(srv.url, data=b"{" + b" " * 2000 + b"}", headers=headers, timeout=10)
        assert r.json()["Response"]["Error"]["Code"] == "RequestSizeLimitExceeded"
    finally:
        srv.stop()
    assert "SIGNATURE CHECKING IS OFF" in srv.log_path.read_text()
