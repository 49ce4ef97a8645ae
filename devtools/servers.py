"""PostgreSQL and Redis servers from installed binaries, for development and tests only.

Tests start throwaway servers on free loopback ports in temporary directories
(`throwaway_postgres`, `throwaway_redis`); `devtools.devservers` keeps persistent ones for
`scripts/run`.

PostgreSQL refuses to run as root, so under root its server runs as the `postgres` system
user (created by Debian's package), which then owns the data directory. Settings go into the
cluster's postgresql.conf, so `pg_ctl start` needs no extra options.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_START_TIMEOUT = 30.0

# Throwaway test clusters trade durability for speed; a dev cluster keeps PostgreSQL defaults.
_FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class DevServerError(Exception):
    pass


def free_port() -> int:
    """A loopback port free right now (the caller retries if someone takes it first)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(
    what: str,
    ready: Callable[[], bool],
    deadline_seconds: float,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if ready():
            return
        if process is not None and process.poll() is not None:
            raise DevServerError(f"{what} exited with status {process.returncode} while starting")
        time.sleep(0.05)  # polling a server's readiness; there is nothing to wait on instead
    raise DevServerError(f"{what} did not become ready within {deadline_seconds}s")


def pg_bindir() -> Path:
    """Where PostgreSQL's server binaries are: $PG_BIN, Debian's newest, or the PATH."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise DevServerError("no PostgreSQL server binaries found; install postgresql or set PG_BIN")


def server_user() -> str | None:
    """The user the PostgreSQL server must run as: None for ourselves, `postgres` under root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise DevServerError(
            "running as root needs the 'postgres' system user (apt install postgresql)"
        ) from None
    return "postgres"


def reachable_by(user: str | None, directory: Path) -> bool:
    if user is None:
        return True
    return subprocess.run(["test", "-x", str(directory)], user=user, check=False).returncode == 0


def _pg_is_ready(port: int) -> bool:
    result = subprocess.run(
        [str(pg_bindir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)], check=False
    )
    return result.returncode == 0


def _redis_is_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class PostgresServer:
    """One cluster in `directory` (data in `directory/data`), listening on 127.0.0.1:`port`."""

    directory: Path
    port: int
    fast: bool = False
    user: str | None = field(default_factory=server_user)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run(args, user=self.user, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        """Create the cluster if `directory` holds none (trust auth: loopback only, dev only)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            shutil.chown(self.directory, self.user, self.user)
        try:
            self._run(
                str(pg_bindir() / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise DevServerError(f"initdb failed: {exc.stderr.decode(errors='replace').strip()}") from None
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "max_connections": "200",
            **(_FAST_SETTINGS if self.fast else {}),
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# storefront devservers\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        """Run the server as a child process (tests); stops with `stop()`."""
        self.init()
        with (self.directory / "postgres.log").open("ab") as log:  # the child keeps its own copy
            self._process = subprocess.Popen(
                [str(pg_bindir() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)],
                user=self.user,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        _wait_for("PostgreSQL", lambda: _pg_is_ready(self.port), _START_TIMEOUT, self._process)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # "fast" shutdown: no waiting for clients
            self._process.wait(timeout=30)
        self._process = None

    def crash(self) -> None:
        """Stop the server as a crash does (`pg_ctl stop -m immediate`: no checkpoint, clients cut
        off); `start()` brings it back after crash recovery."""
        if self._process is None or self._process.poll() is not None:
            raise DevServerError("crash() needs a server started with start()")
        self._run(str(pg_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        self._process.wait(timeout=30)
        self._process = None

    def start_daemon(self) -> None:
        """Run the server detached (development); a running one is left alone."""
        if _pg_is_ready(self.port):
            return
        self.init()
        log = self.directory / "postgres.log"
        try:
            self._run(
                str(pg_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-l", str(log),
                "-o", f"-p {self.port}", "-w", "-t", str(int(_START_TIMEOUT)), "start",
            )  # fmt: skip
        except subprocess.CalledProcessError:
            raise DevServerError(f"PostgreSQL did not start; see {log}") from None

    def stop_daemon(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run(str(pg_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")


@dataclass
class RedisServer:
    """One redis-server in `directory` on 127.0.0.1:`port`; `appendonly` keeps data across restarts."""

    directory: Path
    port: int
    appendonly: bool = False
    extra_args: tuple[str, ...] = ()
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _args(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise DevServerError("redis-server is not installed (apt install redis-server)")
        return [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--logfile", str(self.directory / "redis.log"), *self.extra_args,
        ]  # fmt: skip

    def start(self) -> None:
        """Run as a child process (tests); `stop()` then `start()` again restarts it on the same port."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for("Redis", lambda: _redis_is_ready(self.port), _START_TIMEOUT, self._process)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=30)
        self._process = None

    def kill(self) -> None:
        """SIGKILL: with `appendonly`, a restart keeps what the AOF had (fsync'd every second)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=30)
        self._process = None

    def lose_data(self) -> None:
        """Kill the server and start it again empty on the same port, as after a failover to a
        replica that had nothing, or a lost volume."""
        self.kill()
        for name in ("appendonlydir", "appendonly.aof", "dump.rdb"):
            path = self.directory / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        self.start()

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """The server stops answering (SIGSTOP) but keeps its connections open, as a stuck
        server does; it answers again on leaving the block."""
        if self._process is None:
            raise DevServerError("stalled() needs a server started with start()")
        self._process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)

    def start_daemon(self) -> None:
        if _redis_is_ready(self.port):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        pidfile = self.directory / "redis.pid"
        subprocess.run([*self._args(), "--daemonize", "yes", "--pidfile", str(pidfile)], check=True)
        _wait_for("Redis", lambda: _redis_is_ready(self.port), _START_TIMEOUT)

    def stop_daemon(self) -> None:
        pidfile = self.directory / "redis.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)


def scratch_dir(prefix: str) -> Path:
    """A new temporary directory the PostgreSQL server user can reach."""
    for parent in (None, "/tmp"):
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        if reachable_by(server_user(), path.parent):
            return path
        path.rmdir()
    raise DevServerError("no temporary directory is reachable by the postgres user")


@contextlib.contextmanager
def throwaway_postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A server for tests, fast unless `durable`: the fast one commits before its WAL is
    written (synchronous_commit off), so a crash (`crash()`) loses the last commits; a test
    that crashes the server and counts on what committed asks for a durable one."""
    directory = scratch_dir("storefront-pg-")
    server = PostgresServer(directory, free_port(), fast=not durable)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def throwaway_redis(*, appendonly: bool = False) -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="storefront-redis-"))
    server = RedisServer(directory, free_port(), appendonly=appendonly)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
