"""A throwaway PostgreSQL for the tests: `initdb` on a scratch directory and a free loopback port, started and
stopped by the test run itself (nothing may need a PostgreSQL the suite did not start). PostgreSQL refuses to
run as root: when the tests run as root, the cluster belongs to the `postgres` user (Debian's package creates
it) and its programs run as that user. Run this file to start one by hand: it prints the URL and waits."""

import glob
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def _bin_dir() -> pathlib.Path:
    """The newest installed PostgreSQL's programs (Debian puts them under /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return pathlib.Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return pathlib.Path(initdb).parent
    raise RuntimeError("PostgreSQL is not installed: run tests/setup_clients.sh (it installs postgresql-15)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """One cluster: `start()`, `url`, `stop()`, and `restart()` on the same port and data (outage tests)."""

    def __init__(self, root: pathlib.Path | None = None):
        self.bin = _bin_dir()
        self.root = pathlib.Path(root or tempfile.mkdtemp(prefix="iai-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.url = f"postgres://iai@127.0.0.1:{self.port}/iai"

    def _run(self, *args, check=True, **kw):
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)

    def start(self):
        if not self.data.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            if self.as_root:
                shutil.chown(self.root, "postgres", "postgres")
            self._run("initdb", "-D", str(self.data), "-U", "iai", "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", "--no-instructions")
            with open(self.data / "postgresql.conf", "a") as conf:
                # Loopback only, a socket directory of its own, enough connections for several replicas.
                conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                           f"unix_socket_directories = '{self.root}'\nmax_connections = 400\n"
                           # A test cluster: durability is not what is tested here, speed is needed.
                           "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "30", "start")
        if not (self.data / "base").exists() or not self._has_database():
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "iai", "iai")
        return self

    def _has_database(self) -> bool:
        out = self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "iai", "-d", "postgres",
                        "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'iai'", check=False)
        return out.stdout.strip() == "1"

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self):
        self.stop()
        return self.start()

    def new_database(self) -> str:
        """A fresh, empty database of this cluster; its URL."""
        self._count = getattr(self, "_count", 0) + 1
        name = f"iai_{os.getpid()}_{self._count}"
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "iai", name],
                       check=True, capture_output=True, text=True)
        return f"postgres://iai@127.0.0.1:{self.port}/{name}"

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


if __name__ == "__main__":
    pg = Postgres().start()
    print(pg.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pg.destroy()
        sys.exit(0)
