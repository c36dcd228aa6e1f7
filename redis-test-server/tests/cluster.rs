//! The private cluster forms, and survives a master's death by promoting its replica.

use std::time::{Duration, Instant};

use redis_test_server::RedisCluster;

#[test]
fn three_masters_with_a_replica_each_serve_every_slot() {
    let cluster = RedisCluster::start();
    let topology = cluster.topology();
    assert_eq!(topology.len(), 6, "{topology:?}");
    let masters: Vec<_> = topology.iter().filter(|node| node.master).collect();
    assert_eq!(masters.len(), 3, "{topology:?}");
    assert!(masters.iter().all(|master| !master.slots.is_empty()));
    assert_eq!(cluster.urls().len(), 6);
}

#[test]
fn a_killed_master_is_replaced_by_its_replica() {
    let mut cluster = RedisCluster::start();
    let victim = cluster.masters()[0];
    cluster.node(victim).kill();
    cluster.wait_until_healthy(3, Duration::from_secs(30));
    let masters = cluster.masters();
    assert!(!masters.contains(&victim), "{masters:?}");
    // The old master comes back as a replica of the one that replaced it.
    cluster.node(victim).restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rejoined = cluster
            .topology()
            .into_iter()
            .find(|node| node.port == victim)
            .expect("the old master is still known");
        if !rejoined.master && !rejoined.failed {
            break;
        }
        assert!(Instant::now() < deadline, "never rejoined: {rejoined:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.wait_until_healthy(3, Duration::from_secs(30));
}
