"""The throwaway Redis Cluster: three masters sharing every slot, a synced replica for each, and a
replica that takes over with the data when its master is killed.

The tests share one cluster (starting one takes seconds); the failover test comes last in the
file because it leaves a master dead.
"""

from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient

from devtools.redis_cluster import RedisCluster, throwaway_redis_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    with throwaway_redis_cluster() as started:
        yield started


def test_three_masters_share_every_slot_and_each_has_a_synced_replica(cluster):
    masters = cluster.masters()
    assert len(masters) == 3
    assert cluster.url in {master.url for master in masters}
    with redis.Redis(port=cluster.ports[0], decode_responses=True) as client:
        nodes = client.cluster("NODES")
    master_ports = {master.port for master in masters}
    slots_per_master = [
        sum(int(bounds[-1]) - int(bounds[0]) + 1 for bounds in entry["slots"])
        for address, entry in nodes.items()
        if int(address.rsplit(":", 1)[1]) in master_ports
    ]
    assert len(slots_per_master) == 3
    assert all(slots > 0 for slots in slots_per_master)
    assert sum(slots_per_master) == 16384

    replicas = [node for node in cluster.nodes if node.port not in master_ports]
    assert sorted(node.port for node in cluster.replicas()) == sorted(node.port for node in replicas)
    replicated = set()
    for replica in replicas:
        with redis.Redis(port=replica.port, decode_responses=True) as client:
            info = client.info("replication")
        assert info["role"] == "slave"
        assert info["master_link_status"] == "up"
        replicated.add(info["master_port"])
    assert replicated == master_ports


def test_a_cluster_client_reads_back_what_it_wrote_on_every_master(cluster):
    keys = [f"readback:{n}" for n in range(30)]
    with ClusterClient.from_url(cluster.url, decode_responses=True) as client:
        for key in keys:
            client.set(key, key.upper())
        assert [client.get(key) for key in keys] == [key.upper() for key in keys]
    # Thirty keys hash to every master: the client followed the slot map, not one node.
    assert {cluster.master_of(key).port for key in keys} == {master.port for master in cluster.masters()}


def test_a_replica_takes_over_a_killed_master_with_its_data(cluster):
    with ClusterClient.from_url(cluster.url, decode_responses=True) as client:
        client.set("failover:before", "kept")
    master = cluster.master_of("failover:before")
    with redis.Redis(port=master.port) as client:
        # The replica must hold the key before its master dies, or the read below races the sync.
        assert client.execute_command("WAIT", 1, 5000) == 1

    cluster.kill(master)
    cluster.wait_for_failover()

    assert master.port not in {node.port for node in cluster.masters()}
    assert cluster.master_of("failover:before").port != master.port
    with ClusterClient.from_url(cluster.url, decode_responses=True) as client:
        assert client.get("failover:before") == "kept"
        client.set("failover:after", "written")
        assert client.get("failover:after") == "written"
