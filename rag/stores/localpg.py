"""A throwaway PostgreSQL 16 with pgvector, from the ``pgserver`` wheel, listening on 127.0.0.1.

The tests and benches start one in a temporary folder: a real server, no mocks. ``pgserver``
itself listens on a Unix socket only; this runs its bundled binaries (initdb, pg_ctl) with a TCP
port, and can stop and start the same data folder, which the fault benchmark needs.

    with LocalPostgres(tmp_path) as pg:
        os.environ["RAG_DATABASE_URL"] = pg.url
        ...
        pg.stop(); pg.start()        # a database restart

As root (containers, CI) the server runs as the system user ``pgserver``, as pgserver does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

from ..errors import RagError


def _binaries() -> Path:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError as e:
        raise RagError("a local PostgreSQL needs the pgserver package: "
                       "pip install 'rag-interview[postgres]'") from e
    return Path(POSTGRES_BIN_PATH)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    def __init__(self, folder: str | Path, port: int | None = None):
        self.folder = Path(folder).resolve()
        self.data = self.folder / "data"
        self.port = port or free_port()
        self.bin = _binaries()
        self.user = None
        if os.geteuid() == 0:  # postgres refuses to run as root
            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
            import stat

            self.user = "pgserver"
            ensure_user_exists(self.user)
            self.folder.mkdir(parents=True, exist_ok=True)
            ensure_prefix_permissions(self.folder)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
            ensure_folder_permissions(self.bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run([str(self.bin / args[0]), *args[1:]], user=self.user, timeout=timeout,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode:
            log = (self.folder / "postgres.log")
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RagError(f"{args[0]} failed ({result.returncode}): {result.stdout[-2000:]}{tail}")

    def start(self) -> "LocalPostgres":
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.user:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        if (self.data / "postmaster.pid").exists():  # left running by a process that died
            with contextlib.suppress(RagError):
                self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--encoding=utf8", "--no-sync")
        # fsync off: a throwaway server for tests and benches, where speed matters more than
        # surviving a power cut; the fault bench stops it with pg_ctl (a clean shutdown).
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.folder / "postgres.log"),
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
                        "-c max_connections=200 -c shared_buffers=256MB", "start")
        deadline = time.monotonic() + 30
        while True:  # pg_ctl -w waits for the socket; wait for TCP too
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RagError(f"PostgreSQL did not open 127.0.0.1:{self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
