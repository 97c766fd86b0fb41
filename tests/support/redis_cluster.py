"""A real local Redis Cluster for tests: three masters, three replicas, loopback ports."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis as SyncRedis
from redis.exceptions import RedisError

from shortener.store.embedded import COMPACT_HASH_CONFIG, cli_binary, server_binary
from tests.support.redis_servers import answers_ping

START_SECONDS = 15.0
# A node's cluster bus listens on its port + 10000 (fixed in Redis 6.2). Ports below the
# kernel's ephemeral range keep both clear of outgoing connections' local ports.
_PORTS = range(12_000, 22_000)
_BUS_OFFSET = 10_000


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """`count` ports whose bus ports are free as well."""
    chosen: list[int] = []
    for port in random.sample(_PORTS, len(_PORTS)):
        if _bindable(port) and _bindable(port + _BUS_OFFSET):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("no free loopback ports for a Redis Cluster")


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {seconds:g} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class ClusterServer:
    """One cluster-enabled `redis-server`, stopped and started again in the same directory
    (so that it keeps its node id and data)."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self) -> SyncRedis:
        return SyncRedis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--cluster-enabled", "yes",
            "--cluster-config-file", f"nodes-{self.port}.conf",
            "--cluster-node-timeout", "1000",
            "--appendonly", "yes",
            "--save", "",
            "--logfile", "redis.log",
        ]  # fmt: skip
        for name, value in COMPACT_HASH_CONFIG.items():
            args += [f"--{name}", value]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self._answers_or_died, START_SECONDS, f"redis-server on port {self.port}")
        if not self.running:
            raise RuntimeError(f"redis-server on port {self.port} exited:\n{self.log_tail()}")

    def _answers_or_died(self) -> bool:
        return not self.running or answers_ping(self.port)

    def stop(self) -> None:
        """Shut down as an operator would (SIGTERM: the node saves and leaves)."""
        process, self.process = self.process, None
        if process is None:
            return
        deadline = time.monotonic() + START_SECONDS
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                break
            # A replica refuses SIGTERM while it writes its first AOF after a sync, and only
            # says so in its log; asked again once that is done, it stops.
            process.terminate()
            with suppress(subprocess.TimeoutExpired):
                process.wait(0.2)
        process.wait(10)

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait(10)

    def cluster_info(self) -> dict[str, str]:
        with self.client() as client:
            raw = client.execute_command("CLUSTER", "INFO")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {key: value.strip() for key, value in pairs}

    def replication(self) -> dict[str, Any]:
        with self.client() as client:
            return dict(client.info("replication"))

    def slots(self) -> set[int]:
        """The hash slots this node serves as a master."""
        with self.client() as client:
            raw = client.execute_command("CLUSTER", "NODES")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        served: set[int] = set()
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 8 or "myself" not in fields[2].split(","):
                continue
            # Ranges, single slots, and slots in migration ("[...]"), which stay here.
            for entry in fields[8:]:
                if entry.startswith("["):
                    continue
                first, _, last = entry.partition("-")
                served.update(range(int(first), int(last or first) + 1))
        return served

    def cluster_ok(self) -> bool:
        try:
            return self.cluster_info().get("cluster_state") == "ok"
        except (RedisError, OSError):
            return False

    def role(self) -> str:
        with self.client() as client:
            reply = client.execute_command("ROLE")
        role = reply[0]
        return role.decode() if isinstance(role, bytes) else str(role)

    def log_tail(self) -> str:
        log = self.directory / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""


@dataclass
class LocalCluster:
    """Six nodes made into a cluster by `redis-cli --cluster create`."""

    directory: Path
    masters: int = 3
    replicas_per_master: int = 1
    nodes: list[ClusterServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The first node's URL: what the service is configured with."""
        return f"redis://{self.nodes[0].address}/0"

    def start(self) -> None:
        count = self.masters * (1 + self.replicas_per_master)
        self.nodes = [
            ClusterServer(self.directory / str(port), port) for port in cluster_ports(count)
        ]
        try:
            for node in self.nodes:
                node.start()
            create = [cli_binary(), "--cluster", "create", *(n.address for n in self.nodes)]
            create += ["--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"]
            created = subprocess.run(create, capture_output=True, text=True, timeout=60)
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}")
            self.wait_ok()
            # A replica that has not finished its first sync cannot take over yet.
            wait_until(self._replicas_in_sync, START_SECONDS, "replicas to sync")
        except BaseException:
            self.close()
            raise

    def running(self) -> list[ClusterServer]:
        return [node for node in self.nodes if node.running]

    def wait_ok(self, seconds: float = START_SECONDS) -> None:
        """Until every running node says `cluster_state:ok` and agrees on who are masters."""

        def settled() -> bool:
            nodes = self.running()
            if not all(node.cluster_ok() for node in nodes):
                return False
            try:
                return len(self.master_nodes()) == self.masters
            except (RedisError, OSError):
                return False

        wait_until(settled, seconds, "cluster_state:ok on every node")

    def master_nodes(self) -> list[ClusterServer]:
        return [node for node in self.running() if node.role() == "master"]

    def replica_of(self, master: ClusterServer) -> ClusterServer:
        for node in self.running():
            if node is master:
                continue
            info = node.replication()
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == master.port:
                return node
        raise LookupError(f"no replica of {master.address}")

    def _replicas_in_sync(self) -> bool:
        try:
            for master in self.master_nodes():
                info = master.replication()
                replicas = [info.get(f"slave{i}") for i in range(self.replicas_per_master)]
                if not all(r and r.get("state") == "online" for r in replicas):
                    return False
        except (RedisError, OSError):
            return False
        return True

    def sync_replicas(self, seconds: float = 5.0) -> None:
        """Block until every master's writes so far have reached its replicas."""
        for master in self.master_nodes():
            deadline = time.monotonic() + seconds
            with master.client() as client:
                while int(client.execute_command("WAIT", self.replicas_per_master, 100)) < (
                    self.replicas_per_master
                ):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{master.address}: replicas did not catch up")

    def stop_node(self, node: ClusterServer) -> None:
        node.stop()

    def start_node(self, node: ClusterServer) -> None:
        node.start()

    def close(self) -> None:
        # Their data dies with the temporary directory: no need to let them save it.
        for node in self.nodes:
            with suppress(Exception):
                node.kill()

    def dbsizes(self) -> dict[str, int]:
        """Keys per master."""
        sizes = {}
        for node in self.master_nodes():
            with node.client() as client:
                sizes[node.address] = int(client.dbsize())
        return sizes


def binaries_missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for binary in (server_binary(), cli_binary()):
        if not Path(binary).is_file():
            return f"{binary} is not installed"
    return None


def local_cluster(directory: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(directory)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()
