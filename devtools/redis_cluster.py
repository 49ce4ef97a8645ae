"""A throwaway Redis Cluster (3 masters, 3 replicas) from the installed redis-server, for tests
and benchmarks of code that talks to a cluster: slot routing, MOVED redirects, failover.

Each node is a `RedisServer` in a sub-directory of one temporary directory, on a free loopback
port whose cluster bus port (port + 10000) is free too. `redis-cli --cluster create` joins them;
a small node timeout lets a replica take over a killed master within a few seconds.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from devtools.servers import DevServerError, RedisServer, _redis_is_ready, _wait_for, free_port

_MASTERS = 3
_REPLICAS_PER_MASTER = 1
_SLOTS = 16384
_START_TIMEOUT = 30.0
_BUS_PORT_OFFSET = 10000  # redis-server's fixed offset unless cluster-port says otherwise

# A node is deemed failed after --cluster-node-timeout ms: Redis's 15 s default would make every
# failover test wait that long. A master waits --repl-diskless-sync-delay seconds (5 by default)
# for more replicas before a full sync; each master here has one, so waiting only delays the start.
_NODE_ARGS = (
    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0",
)  # fmt: skip


def _free_node_port(taken: set[int]) -> int:
    """A port that is free with its bus port, and collides with no other node's two ports."""
    for _ in range(100):
        port = free_port()
        bus = port + _BUS_PORT_OFFSET
        if bus > 65535 or {port, bus} & taken:
            continue
        # free_port() only vouches for the port itself; the bus port needs its own check.
        with socket.socket() as first, socket.socket() as second:
            try:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", bus))
            except OSError:
                continue
        return port
    raise DevServerError("found no free port whose cluster bus port is free too")


def _ask(port: int, *command: str) -> Any:
    # A short timeout: a killed node refuses at once, but a stalled one must not hang a poll.
    with redis.Redis(port=port, socket_timeout=1.0, decode_responses=True) as client:
        return client.execute_command(*command)


@dataclass
class RedisCluster:
    """The nodes of one cluster; which are masters changes with failovers (`masters()`)."""

    nodes: list[RedisServer]

    @classmethod
    def in_directory(cls, directory: Path) -> RedisCluster:
        """Nodes, not yet started, each in a sub-directory of `directory` named after its port."""
        taken: set[int] = set()
        nodes = []
        for _ in range(_MASTERS * (1 + _REPLICAS_PER_MASTER)):
            port = _free_node_port(taken)
            taken |= {port, port + _BUS_PORT_OFFSET}
            nodes.append(RedisServer(directory / str(port), port, extra_args=_NODE_ARGS))
        return cls(nodes)

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """A running node's URL (the first master's until it is killed): cluster clients such as
        `redis.asyncio.cluster.RedisCluster.from_url` discover the other nodes from it."""
        return self._running()[0].url

    def start(self) -> None:
        """Start the nodes, join them into a cluster and wait until every replica has synced."""
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise DevServerError("redis-cli is not installed (apt install redis-tools)")
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        try:
            subprocess.run(
                [cli, "--cluster", "create", *addresses,
                 "--cluster-replicas", str(_REPLICAS_PER_MASTER), "--cluster-yes"],
                check=True, capture_output=True, timeout=_START_TIMEOUT,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            # redis-cli reports its errors on stdout.
            output = (exc.stdout + exc.stderr).decode(errors="replace").strip()
            raise DevServerError(f"redis-cli --cluster create failed: {output}") from None
        _wait_for("Redis Cluster", self._formed, _START_TIMEOUT)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self, node: RedisServer) -> None:
        """SIGKILL one node; if it was a master, its replica takes over (`wait_for_failover`)."""
        node.kill()

    def restart(self, node: RedisServer) -> None:
        """Start a killed node again and wait until it is back in the cluster: a master killed
        earlier rejoins as its successor's replica and has synced with it, so killing that
        successor next does not promote a replica with nothing."""
        node.start()
        _wait_for("Redis Cluster node rejoining", self._formed, _START_TIMEOUT)

    def lose_shard(self, master: RedisServer) -> None:
        """Kill `master` and its replicas and start them again empty: the cluster still gives
        them their slots (nodes.conf), but every key of those slots is gone, as after losing a
        shard's every copy. Until they are back, the cluster refuses commands (CLUSTERDOWN)."""
        shard = [master, *self.replicas_of(master)]
        for node in shard:
            node.kill()
        for node in shard:
            node.start()
        _wait_for("Redis Cluster shard back empty", self._formed, _START_TIMEOUT)

    def masters(self) -> list[RedisServer]:
        """The nodes serving slots, as a running node sees them now."""
        return [self._node(address) for address, entry in self._cluster_nodes().items() if entry["slots"]]

    def replicas(self) -> list[RedisServer]:
        nodes = self._cluster_nodes().items()
        return [self._node(address) for address, entry in nodes if "slave" in entry["flags"].split(",")]

    def replicas_of(self, master: RedisServer) -> list[RedisServer]:
        nodes = self._cluster_nodes()
        [master_id] = [entry["node_id"] for address, entry in nodes.items() if self._node(address) is master]
        return [self._node(address) for address, entry in nodes.items() if entry["master_id"] == master_id]

    def master_of(self, key: str) -> RedisServer:
        """The master serving `key`'s hash slot."""
        slot = int(_ask(self._running()[0].port, "CLUSTER", "KEYSLOT", key))
        for address, entry in self._cluster_nodes().items():
            if any(int(bounds[0]) <= slot <= int(bounds[-1]) for bounds in entry["slots"]):
                return self._node(address)
        raise DevServerError(f"no node serves slot {slot}")

    def wait_for_failover(self, deadline_seconds: float = _START_TIMEOUT) -> None:
        """Wait until the running nodes agree that every slot is served by a running master."""
        _wait_for("Redis Cluster failover", self._healed, deadline_seconds)

    def _running(self) -> list[RedisServer]:
        running = [node for node in self.nodes if _redis_is_ready(node.port)]
        if not running:
            raise DevServerError("no node of the Redis Cluster is running")
        return running

    def _node(self, address: str) -> RedisServer:
        port = int(address.rsplit(":", 1)[1])
        return next(node for node in self.nodes if node.port == port)

    def _cluster_nodes(self, port: int | None = None) -> dict[str, dict[str, Any]]:
        nodes: dict[str, dict[str, Any]] = _ask(port or self._running()[0].port, "CLUSTER NODES")
        return nodes

    def _formed(self) -> bool:
        try:
            for node in self.nodes:
                if _ask(node.port, "CLUSTER INFO")["cluster_state"] != "ok":
                    return False
                # cluster_state turns ok before gossip has told every node which ones became
                # replicas; a client asking such a node for the slot map would miss them.
                view = self._cluster_nodes(node.port).values()
                replicas = sum("slave" in entry["flags"].split(",") for entry in view)
                if len(view) != len(self.nodes) or replicas != _MASTERS * _REPLICAS_PER_MASTER:
                    return False
                replication = _ask(node.port, "INFO", "replication")
                # Until the first sync, a failover would promote a replica with no data.
                if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                    return False
            return True
        except redis.RedisError:
            return False

    def _healed(self) -> bool:
        try:
            running = self._running()
            ports = {node.port for node in running}
            for node in running:
                info = _ask(node.port, "CLUSTER INFO")
                if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != _SLOTS:
                    return False
                # Until the node timeout passes, a killed master still counts as serving its
                # slots (cluster_state stays ok), so the owners must be checked too.
                owners = [a for a, entry in self._cluster_nodes(node.port).items() if entry["slots"]]
                if any(self._node(address).port not in ports for address in owners):
                    return False
            return True
        except redis.RedisError:
            return False


@contextlib.contextmanager
def throwaway_redis_cluster() -> Iterator[RedisCluster]:
    with tempfile.TemporaryDirectory(prefix="storefront-redis-cluster-", ignore_cleanup_errors=True) as name:
        cluster = RedisCluster.in_directory(Path(name))
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()  # also ends the nodes of a start that failed half-way
