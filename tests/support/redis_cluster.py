"""A real Redis Cluster for tests and the deployment rehearsal, started from the machine's
``redis-server`` on free ports (never the shared Redis on 6379).

    tls = make_tls_files(tmp / "tls")                  # optional: a CA and a server certificate
    with RedisClusterProcesses(tmp / "cluster", password="s3cret", tls=tls) as cluster:
        cluster.url                                    # rediss://:s3cret@127.0.0.1:<port>
        cluster.master_of_slot(1234)                   # the port of the master serving a slot
        cluster.masters_serving(["a", "b", "c"])       # the masters those keys live on
        cluster.migrate_slot(1234, cluster.ports[2])   # move a slot and its keys, live
        cluster.kill_node(cluster.ports[1])            # a master crashes

The cluster has ``masters`` masters and no replicas, each in ``workdir/node-<port>/`` (its
``nodes.conf``, ``redis.log`` and ``stdout.log``); nothing is persisted (``--save ""
--appendonly no``). With ``tls`` the nodes listen on TLS only, and speak TLS to each other
(cluster bus, replication, MIGRATE); clients are not asked for certificates. With ``password``
every node requires it (``--requirepass``, ``--masterauth``).

``start()`` raises ``ClusterStartError`` (with the nodes' log tails) when a node does not come
up or the cluster does not reach ``cluster_state:ok`` in time; the processes are killed and the
workdir is kept for reading. ``stop()`` kills the nodes and deletes their directories. The
node commands here use the ``redis`` package (the ``api``/``aws`` extras, installed for tests).
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

HOST = "127.0.0.1"
#: Ports a test cluster never takes: the machine's shared Redis and its cluster bus.
RESERVED_PORTS = frozenset({6379, 16379})
#: Steps of ``migrate_slot``, in order, as passed to its ``after_step`` callback.
MIGRATION_STEPS = ("migrating", "keys-moved", "target-owns", "done")


def unavailable_reason() -> str | None:
    """Why no cluster can be started here (``redis-server`` or ``redis-cli`` missing), or None."""
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    return f"{' and '.join(missing)} not found on PATH" if missing else None


class ClusterStartError(RuntimeError):
    """The cluster did not come up; the message holds the nodes' log tails."""


# -- TLS material --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA that signed the server certificate, the certificate and its key."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path, hosts: Sequence[str] = (HOST, "localhost")) -> TlsFiles:
    """A self-signed CA and a server certificate for ``hosts`` (IP addresses or DNS names,
    all in the subject alternative names), valid for a day, written under ``directory``.

    The server certificate is also good for client authentication, since Redis nodes present
    it to each other on the TLS cluster bus."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "textnlp test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(x509, signing=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(x509, signing=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server.key"
    )
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


def _key_usage(x509: Any, *, signing: bool) -> Any:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not signing,
        key_cert_sign=signing,
        crl_sign=signing,
        encipher_only=False,
        decipher_only=False,
    )


# -- the cluster ---------------------------------------------------------------------------------
@dataclass
class _Node:
    port: int
    bus_port: int
    directory: Path
    process: subprocess.Popen[bytes]


class RedisClusterProcesses:
    """``masters`` Redis nodes forming one cluster; a context manager (``start``/``stop``)."""

    def __init__(
        self,
        workdir: Path,
        *,
        masters: int = 3,
        password: str | None = None,
        tls: TlsFiles | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        if masters < 3:
            raise ValueError("a Redis Cluster needs at least 3 masters")
        self.workdir = workdir
        self.masters = masters
        self.password = password
        self.tls = tls
        self.startup_timeout_s = startup_timeout_s
        #: The nodes' client ports (TLS ports with ``tls``), first node first; set by start().
        self.ports: list[int] = []
        self._nodes: list[_Node] = []

    # -- addresses ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``redis[s]://[:password@]127.0.0.1:<first port>``: where a cluster client starts."""
        if not self.ports:
            raise RuntimeError("the cluster is not started")
        scheme = "rediss" if self.tls else "redis"
        credentials = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"{scheme}://{credentials}{HOST}:{self.ports[0]}"

    def node(self, port: int) -> Any:
        """A plain ``redis.Redis`` client of the one node on ``port`` (the caller closes it)."""
        import redis

        options: dict[str, Any] = {"password": self.password, "socket_timeout": 10.0}
        if self.tls:
            options |= {"ssl": True, "ssl_ca_certs": str(self.tls.ca)}
        return redis.Redis(host=HOST, port=port, **options)

    def node_ids(self) -> dict[int, str]:
        """Port -> cluster node id, of every master."""
        return {port: node_id for port, (node_id, _) in self._masters_view().items()}

    def slot_ranges(self) -> dict[int, list[tuple[int, int]]]:
        """Port -> the slot ranges (inclusive) that master serves, as the first node sees it."""
        return {port: ranges for port, (_, ranges) in self._masters_view().items()}

    def master_of_slot(self, slot: int) -> int:
        """The port of the master serving ``slot``."""
        for port, ranges in self.slot_ranges().items():
            if any(low <= slot <= high for low, high in ranges):
                return port
        raise LookupError(f"no master serves slot {slot}")

    def slot_of(self, key: str | bytes) -> int:
        """The hash slot of ``key``, as the server computes it (CLUSTER KEYSLOT)."""
        client = self.node(self.ports[0])
        try:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))
        finally:
            client.close()

    def masters_serving(self, keys: Sequence[str | bytes]) -> set[int]:
        """The ports of the masters whose slots ``keys`` hash to."""
        ranges = self.slot_ranges()
        client = self.node(self.ports[0])
        try:
            slots = {int(client.execute_command("CLUSTER", "KEYSLOT", key)) for key in keys}
        finally:
            client.close()
        return {
            port
            for port, spans in ranges.items()
            if any(low <= slot <= high for slot in slots for low, high in spans)
        }

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the nodes on free ports, create the cluster, wait until every node says
        ``cluster_state:ok``; ``ClusterStartError`` (nodes killed, workdir kept) otherwise."""
        reason = unavailable_reason()
        if reason is not None:
            raise ClusterStartError(reason)
        if self._nodes:
            raise RuntimeError("the cluster is already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_nodes()
            self._create_cluster()
            self._wait_until_ok()
        except Exception as exc:
            tails = self._log_tails()
            self._kill()
            raise ClusterStartError(
                f"Redis Cluster did not start ({exc}); files kept in {self.workdir}\n{tails}"
            ) from exc

    def stop(self) -> None:
        """Kill the nodes and delete their directories (safe to call twice)."""
        nodes = list(self._nodes)
        self._kill()
        for node in nodes:
            shutil.rmtree(node.directory, ignore_errors=True)
        if self.workdir.is_dir() and not any(self.workdir.iterdir()):
            self.workdir.rmdir()

    def __enter__(self) -> RedisClusterProcesses:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.stop()
        else:  # keep the logs of a failed run
            self._kill()

    def kill_node(self, port: int) -> None:
        """SIGKILL the node on ``port``, as a crash would (its slots stay unserved: no replicas).
        ``stop()`` still cleans up after it."""
        for node in self._nodes:
            if node.port == port:
                node.process.kill()
                node.process.wait(timeout=10)
                return
        raise LookupError(f"no node of this cluster on port {port}")

    # -- moving a slot ------------------------------------------------------------------------
    def migrate_slot(
        self, slot: int, to_port: int, *, after_step: Callable[[str], None] | None = None
    ) -> None:
        """Move ``slot`` and its keys to the master on ``to_port`` while clients keep using it,
        the way ``redis-cli --cluster reshard`` does: IMPORTING on the target, MIGRATING on the
        source, MIGRATE the keys in batches, then SETSLOT NODE on the target, the source and
        every other master. ``after_step(name)`` is called after each of ``MIGRATION_STEPS``
        (a test may let its clients run in each state there)."""
        ids = self.node_ids()
        source_port = self.master_of_slot(slot)
        if source_port == to_port:
            raise ValueError(f"slot {slot} is already served by {to_port}")
        source, target = self.node(source_port), self.node(to_port)
        step = after_step or (lambda name: None)
        try:
            target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source_port])
            source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to_port])
            step("migrating")
            while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10):
                source.migrate(HOST, to_port, keys, 0, 5000, auth=self.password)
            step("keys-moved")
            target.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to_port])
            step("target-owns")
            for port in [source_port, *(p for p in ids if p not in {source_port, to_port})]:
                other = self.node(port)
                try:
                    other.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to_port])
                finally:
                    other.close()
            step("done")
        finally:
            source.close()
            target.close()

    # -- internals ----------------------------------------------------------------------------
    def _start_nodes(self) -> None:
        for attempt in range(3):  # a picked port may be taken before the node binds it
            ports = _free_ports(2 * self.masters)
            self._nodes = [
                self._spawn(port, bus_port)
                for port, bus_port in zip(ports[::2], ports[1::2], strict=True)
            ]
            self.ports = [node.port for node in self._nodes]
            try:
                for node in self._nodes:
                    self._wait_listening(node)
                return
            except OSError:
                if attempt == 2 or not self._address_in_use():
                    raise
                retired = list(self._nodes)
                self._kill()
                for node in retired:
                    shutil.rmtree(node.directory, ignore_errors=True)

    def _spawn(self, port: int, bus_port: int) -> _Node:
        server = shutil.which("redis-server")
        assert server is not None
        directory = self.workdir / f"node-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        args = [server, "--bind", HOST, "--daemonize", "no", "--dir", str(directory)]
        args += ["--logfile", str(directory / "redis.log"), "--save", "", "--appendonly", "no"]
        args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        args += ["--cluster-port", str(bus_port), "--cluster-node-timeout", "5000"]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(port)]
            args += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            args += ["--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"]
            args += ["--tls-cluster", "yes", "--tls-replication", "yes"]
        else:
            args += ["--port", str(port)]
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        with (directory / "stdout.log").open("wb") as out:
            process = subprocess.Popen(
                args, cwd=directory, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return _Node(port, bus_port, directory, process)

    def _wait_listening(self, node: _Node) -> None:
        # The node's own word, not a connect probe: another process may hold a picked port.
        deadline = time.monotonic() + self.startup_timeout_s
        log = node.directory / "redis.log"
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise OSError(f"redis-server on {node.port} exited with {node.process.returncode}")
            if log.is_file() and "Ready to accept connections" in log.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on {node.port} not ready after {self.startup_timeout_s}s")

    def _address_in_use(self) -> bool:
        return any("Address already in use" in self._log_of(node) for node in self._nodes)

    def _cli_connection_args(self) -> list[str]:
        args = []
        if self.tls:
            args += ["--tls", "--cacert", str(self.tls.ca)]
        if self.password:
            args += ["-a", self.password, "--no-auth-warning"]
        return args

    def _create_cluster(self) -> None:
        cli = shutil.which("redis-cli")
        assert cli is not None
        addresses = [f"{HOST}:{port}" for port in self.ports]
        command = [cli, *self._cli_connection_args(), "--cluster", "create", *addresses]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        result = subprocess.run(
            command, capture_output=True, timeout=self.startup_timeout_s, check=False
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")[-2000:]
            raise RuntimeError(
                f"redis-cli --cluster create exited with {result.returncode}: {output}"
            )

    def _wait_until_ok(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        pending = list(self.ports)
        while pending:
            port = pending[0]
            if self._cluster_ok(port):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no cluster_state:ok on {pending} after {self.startup_timeout_s}s"
                )
            time.sleep(0.1)

    def _cluster_ok(self, port: int) -> bool:
        client = self.node(port)
        try:
            info = _text(client.execute_command("CLUSTER", "INFO"))
        except Exception:  # not answering yet
            return False
        finally:
            client.close()
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        return (
            fields.get("cluster_state") == "ok"
            and fields.get("cluster_slots_assigned") == "16384"
            and fields.get("cluster_known_nodes") == str(self.masters)
        )

    def _masters_view(self) -> dict[int, tuple[str, list[tuple[int, int]]]]:
        """Port -> (node id, slot ranges) of every master, from CLUSTER NODES on the first node."""
        client = self.node(self.ports[0])
        try:
            lines = _text(client.execute_command("CLUSTER", "NODES")).splitlines()
        finally:
            client.close()
        view: dict[int, tuple[str, list[tuple[int, int]]]] = {}
        for line in lines:
            fields = line.split()
            if len(fields) < 8 or "master" not in fields[2].split(","):
                continue
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            ranges = []
            for item in fields[8:]:
                if item.startswith("["):  # a slot being migrated or imported: listed apart
                    continue
                low, _, high = item.partition("-")
                ranges.append((int(low), int(high or low)))
            view[port] = (fields[0], ranges)
        return view

    def _kill(self) -> None:
        nodes, self._nodes = self._nodes, []
        for node in nodes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in nodes:
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)

    def _log_of(self, node: _Node, lines: int = 20) -> str:
        parts = []
        for name in ("stdout.log", "redis.log"):
            path = node.directory / name
            if path.is_file():
                parts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(parts)

    def _log_tails(self) -> str:
        return "\n".join(
            f"--- node {node.port} ({node.directory}) ---\n{self._log_of(node)}"
            for node in self._nodes
        )


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now on 127.0.0.1 (held together while picked)."""
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count:
            sock = socket.socket()
            sock.bind((HOST, 0))
            if sock.getsockname()[1] in RESERVED_PORTS:
                sock.close()
                continue
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _text(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)
