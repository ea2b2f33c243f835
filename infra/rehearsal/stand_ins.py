"""The data layer's stand-ins: a private PostgreSQL 15 for Aurora, a Redis Cluster for ElastiCache.

Both speak TLS with a certificate of one throw-away CA (processes get a CA bundle holding it:
`SSL_CERT_FILE`) and require the password the deployment generated. They listen on a loopback
address of their own (`127.0.0.N`, N > 1) at the ports the templates declare (5432, 6379), so
that an application that relies on the default port reaches the stand-in, and nothing ever
reaches the machine's shared PostgreSQL and Redis on 127.0.0.1. The Redis nodes themselves run
on free ports of 127.0.0.1 (`tests/support/redis_cluster.py`); the configuration endpoint is a
TCP relay to the first node, as ElastiCache's is a DNS name of one.

PostgreSQL refuses to run as root: as root, `initdb` and `pg_ctl` run as the `postgres` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from tests.support.redis_cluster import RedisClusterProcesses, TlsFiles, make_tls_files

from rehearsal.relay import TcpRelay

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
#: The machine's shared servers live on 127.0.0.1; the stand-ins take another loopback address.
SHARED_HOST = "127.0.0.1"


class StandInError(RuntimeError):
    pass


def pick_loopback(ports: tuple[int, ...]) -> str:
    """A loopback address other than 127.0.0.1 where all `ports` are free."""
    for last in range(23, 250):
        host = f"127.0.0.{last}"
        if all(_bindable(host, port) for port in ports):
            return host
    raise StandInError(f"no loopback address has ports {ports} free")


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Postgres:
    """initdb + pg_ctl in `directory`, TLS on, scram-sha-256, hostssl connections only."""

    def __init__(self, directory: Path, tls: TlsFiles) -> None:
        self.directory = directory
        self.tls = tls
        self.data = directory / "data"
        self.host = ""
        self.port = 0
        self._started = False

    def start(self, *, host: str, port: int, user: str, password: str, database: str) -> None:
        if not (POSTGRES_BIN / "initdb").exists():
            raise StandInError(f"PostgreSQL 15 is not installed ({POSTGRES_BIN}/initdb)")
        self.host, self.port = host, port
        self.directory.mkdir(parents=True, exist_ok=True)
        password_file = self.directory / "password"
        password_file.write_text(password)
        key = self.directory / "server.key"
        shutil.copy(self.tls.key, key)
        shutil.copy(self.tls.cert, self.directory / "server.pem")
        key.chmod(0o600)
        password_file.chmod(0o600)
        self._own(self.directory)
        self._run(
            "initdb", "-D", str(self.data), "-U", user, "--auth=scram-sha-256",
            f"--pwfile={password_file}", "-E", "UTF8", "--locale=C.UTF-8",
        )
        password_file.unlink()
        (self.data / "pg_hba.conf").write_text(
            "# TLS only (Aurora PostgreSQL 15 defaults to rds.force_ssl=1)\n"
            "hostssl all all 127.0.0.0/8 scram-sha-256\n"
        )
        self._own(self.data / "pg_hba.conf")
        options = (
            f"-c listen_addresses={host} -p {port} -c ssl=on "
            f"-c ssl_cert_file={self.directory / 'server.pem'} -c ssl_key_file={key} "
            f"-c unix_socket_directories={self.directory} -c fsync=off "
            "-c password_encryption=scram-sha-256"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "postgres.log"),
                  "-o", options, "-w", "-t", "60", "start")
        self._started = True
        self._create_database(user, password, database)

    def _create_database(self, user: str, password: str, database: str) -> None:
        import psycopg

        with psycopg.connect(host=self.host, port=self.port, user=user, password=password,
                             dbname="postgres", sslmode="require", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{database}"')

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "postgres.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if (
            path.exists()) else ""

    # Running as root: the server and its files belong to the postgres user.
    def _own(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        account = pwd.getpwnam("postgres")
        for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
            os.chown(item, account.pw_uid, account.pw_gid)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(POSTGRES_BIN / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              cwd=self.directory)
        if check and done.returncode != 0:
            raise StandInError(
                f"{tool} exited with {done.returncode}: {(done.stderr or done.stdout)[-800:]}"
                f"\n{self.log_tail()}"
            )


class RedisCluster:
    """`tests.support.redis_cluster` nodes, behind a configuration-endpoint relay."""

    def __init__(self, directory: Path, tls: TlsFiles) -> None:
        self.directory = directory
        self.tls = tls
        self.cluster: RedisClusterProcesses | None = None
        self.relay: TcpRelay | None = None

    def start(self, *, host: str, port: int, auth_token: str, tls: bool, shards: int) -> None:
        self.cluster = RedisClusterProcesses(
            self.directory, masters=max(shards, 3), password=auth_token or None,
            tls=self.tls if tls else None,
        )
        self.cluster.start()
        self.relay = TcpRelay(host, port, SHARED_HOST, self.cluster.ports[0])
        self.relay.start()

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        if self.cluster is not None:
            self.cluster.stop()


class StandIns:
    """Starts the stand-ins when the deployment reaches the Aurora cluster and ElastiCache."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.host = pick_loopback((5432, 6379))
        self.tls = make_tls_files(directory / "tls", hosts=(self.host, SHARED_HOST, "localhost"))
        self.postgres = Postgres(directory / "postgres", self.tls)
        self.redis = RedisCluster(directory / "redis", self.tls)

    def aurora(self, *, user: str, password: str, database: str, port: int) -> tuple[str, int]:
        if not _bindable(self.host, port):
            port = free_port(self.host)
        self.postgres.start(host=self.host, port=port, user=user, password=password,
                            database=database)
        return self.host, port

    def elasticache(
        self, *, auth_token: str, tls: bool, shards: int, port: int
    ) -> tuple[str, int]:
        if not _bindable(self.host, port):
            port = free_port(self.host)
        self.redis.start(host=self.host, port=port, auth_token=auth_token, tls=tls,
                         shards=shards)
        return self.host, port

    def ca_bundle(self, path: Path) -> Path:
        """The system's CAs plus the stand-ins' CA, for SSL_CERT_FILE."""
        import certifi

        system = Path("/etc/ssl/certs/ca-certificates.crt")
        base = system if system.exists() else Path(certifi.where())
        path.write_text(base.read_text() + "\n" + self.tls.ca.read_text())
        return path

    def stop(self) -> None:
        for stand_in in (self.redis, self.postgres):
            try:
                stand_in.stop()
            except Exception as exc:  # cleaning up: report, go on with the rest
                print(f"warning: stopping {type(stand_in).__name__}: {exc}")
