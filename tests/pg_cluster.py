"""Throwaway PostgreSQL 15 clusters for tests: a primary and its streaming replicas on free ports.

Debian's tools, run as the postgres user (initdb, pg_ctl, pg_basebackup -R). The shared server is
never touched; everything lives and dies in the folder given.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "aistatus"
# Durability is not the point here: the clusters are rebuilt for every run.
FAST = [
    "listen_addresses = '127.0.0.1'",
    "fsync = off",
    "synchronous_commit = off",
    "full_page_writes = off",
    "wal_level = replica",
    "max_wal_senders = 10",
    "hot_standby = on",
    "shared_buffers = 16MB",
    "max_connections = 200",
    "wal_retrieve_retry_interval = 200ms",
    "log_min_messages = warning",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> bool:
    return (PG_BIN / "initdb").exists() and (os.geteuid() != 0 or shutil.which("runuser") is not None)


def _run(*args: str, timeout: float = 120) -> str:
    command = [str(a) for a in args]
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class Cluster:
    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.datadir = root / name
        self.log = root / f"{name}.log"
        self.port = free_port()
        self.socket_dir = root

    @property
    def user(self) -> str:
        return "postgres"

    def url(self, database: str = DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def configure(self, *lines: str) -> None:
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n".join([*lines, f"port = {self.port}", f"unix_socket_directories = '{self.socket_dir}'"]))
            conf.write("\n")

    def start(self) -> None:
        _run(PG_BIN / "pg_ctl", "-D", self.datadir, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        _run(PG_BIN / "pg_ctl", "-D", self.datadir, "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()

    def connect(self, database: str = DATABASE, **kwargs) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True, **kwargs
        )

    def execute(self, sql: str, database: str = DATABASE) -> list[tuple]:
        with self.connect(database, connect_timeout=3) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []


def make_root(prefix: str = "aistatus-pg-") -> Path:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    elif getpass.getuser() != "postgres":
        root.chmod(0o700)
    return root


def primary(root: Path, name: str = "primary") -> Cluster:
    """A new server (not a standby), with the site's database created."""
    cluster = Cluster(root, name)
    _run(PG_BIN / "initdb", "-D", cluster.datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    cluster.configure(*FAST)
    cluster.start()
    cluster.execute(f"CREATE DATABASE {DATABASE}", database="postgres")
    return cluster


def replica(root: Path, of: Cluster, name: str) -> Cluster:
    cluster = Cluster(root, name)
    _run(
        PG_BIN / "pg_basebackup",
        *("-h", "127.0.0.1", "-p", of.port, "-U", "postgres", "-D", cluster.datadir),
        *("-R", "-X", "stream", "-c", "fast", "--no-sync"),
    )
    cluster.configure(f"cluster_name = '{name}'")
    cluster.start()
    return cluster


def wait_replayed(primary: Cluster, replicas: list[Cluster], timeout: float = 20) -> None:
    """Until every replica has replayed what the primary had written when this was called."""
    (target,) = primary.execute("SELECT pg_current_wal_lsn()", database="postgres")[0]
    deadline = time.monotonic() + timeout
    for cluster in replicas:
        while True:
            (caught_up,) = cluster.execute(
                f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn", database="postgres"
            )[0]
            if caught_up:
                break
            assert time.monotonic() < deadline, f"{cluster.name} did not replay up to {target}"
            time.sleep(0.05)


def destroy(root: Path, clusters: list[Cluster]) -> None:
    for cluster in clusters:
        if cluster.running():
            try:
                cluster.stop("immediate")
            except Exception:  # already gone
                pass
    shutil.rmtree(root, ignore_errors=True)
