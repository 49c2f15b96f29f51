"""A real local Redis Cluster for the tests: six of Debian's ``redis-server`` on spare ports (three primaries with
a replica each), joined by ``redis-cli --cluster create``, started once per test run (tests/conftest.py
``redis_cluster``) and stopped at its end. A primary can be killed (its replica is promoted) and started again
as a replica of the new primary.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from .chaos import REDIS_SERVER, wait_until_up

REDIS_CLI = "/usr/bin/redis-cli"
NODES = 6  # three primaries, a replica each
BUS_OFFSET = 10_000  # Redis Cluster's bus listens on the node's port + 10000


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spare_ports(count: int) -> list[int]:
    """``count`` ports whose cluster bus ports (+ 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + BUS_OFFSET <= 65_535 and port not in ports and _free(port + BUS_OFFSET):
            ports.append(port)
    return ports


@dataclass
class ClusterNode:
    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(self.process, self.port, self.directory)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def role(self) -> str:
        client = redis.Redis(port=self.port, socket_timeout=2)
        try:
            return client.info("replication")["role"]
        finally:
            client.close()


@dataclass
class LocalCluster:
    directory: Path
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Any node's URL names the cluster (redis-py discovers the rest)."""
        return f"redis://{self.nodes[0].address}/0"

    def start(self) -> None:
        self.nodes = [ClusterNode(port, self.directory / str(port)) for port in spare_ports(NODES)]
        for node in self.nodes:
            node.start()
        subprocess.run([REDIS_CLI, "--cluster", "create", *(node.address for node in self.nodes),
                        "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        self.wait_ok()

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every running node says cluster_state:ok and the client sees three primaries."""
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for node in self.nodes:
                if node.process is None or node.process.poll() is not None:
                    continue
                client = redis.Redis(port=node.port, socket_timeout=2)
                try:
                    states.append(client.cluster("info").get("cluster_state"))
                except redis.RedisError:
                    states.append("down")
                finally:
                    client.close()
            if states and all(state == "ok" for state in states) and len(self.primaries()) == 3:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not come up: {states}")
            time.sleep(0.1)

    def primaries(self) -> list[ClusterNode]:
        found = []
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            try:
                if node.role() == "master":
                    found.append(node)
            except redis.RedisError:
                continue
        return found

    def client(self, **options: object) -> RedisCluster:
        return RedisCluster.from_url(self.url, **options)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
