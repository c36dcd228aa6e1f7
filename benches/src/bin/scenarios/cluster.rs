//! The Redis store on a Redis Cluster: hits and puts against raw cluster `GET`/`SET` on the same
//! cluster client, a tag invalidation on the cluster's groups against one node's, and how evenly the
//! hit workload loads the masters.

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use super::*;

/// A raw `GET` through redis-rs's cluster client, routed by key like the store's reads; or an `MGET` of
/// the key and a second key in its slot (what a hit on a cluster costs: the entry and its group's clock).
struct ClusterGet {
    mget: bool,
    connection: ClusterConnection,
    keys: Arc<Vec<String>>,
}

impl Op for ClusterGet {
    async fn run(&mut self, id: u64) {
        let key = &self.keys[id as usize];
        let found: Option<Vec<u8>> = if self.mget {
            redis::cmd("MGET")
                .arg(key)
                .arg(format!("{key}:clock"))
                .query_async::<(Option<Vec<u8>>, Option<u64>)>(&mut self.connection)
                .await
                .expect("MGET")
                .0
        } else {
            redis::cmd("GET")
                .arg(key)
                .query_async(&mut self.connection)
                .await
                .expect("GET")
        };
        std::hint::black_box(found.expect("present"));
    }
}

/// Commands each master has processed so far (`INFO stats`), by port.
fn commands_per_master(cluster: &redis_test_server::RedisCluster) -> Vec<(u16, u64)> {
    cluster
        .masters()
        .into_iter()
        .map(|port| {
            let info = cluster.node_ref(port).command(&["INFO", "stats"]);
            let processed = info
                .lines()
                .find_map(|line| line.strip_prefix("total_commands_processed:"))
                .and_then(|count| count.trim().parse().ok())
                .unwrap_or(0);
            (port, processed)
        })
        .collect()
}

/// Mean ms of one invalidation of a tag carried by `KEYS` entries.
async fn invalidation_ms(store: &RedisStore<String>) -> Result<f64, BoxError> {
    Ok(tag_invalidation(store).await?.0.as_secs_f64() * 1e3)
}

pub(crate) async fn cluster_scenarios() -> Result<(), BoxError> {
    let backend = Backend::Cluster;
    let cluster = redis_test_server::RedisCluster::start();
    let urls = cluster.urls();
    let options = RedisOptions::from_env_source(&cache_core::config::env::ProcessEnv)?
        .key_prefix("bench:")?
        .timeout(Duration::from_secs(1));
    let store = RedisStore::<String>::connect_cluster(&urls, options.clone())?;
    let raw = ClusterClient::new(urls.clone())?
        .get_async_connection()
        .await?;
    // Hash tags, so that each key's `:clock` sibling shares its slot.
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|id| format!("{{raw:{id}}}")).collect());
    for key in keys.iter() {
        redis::cmd("SET")
            .arg(key)
            .arg(value())
            .query_async::<()>(&mut raw.clone())
            .await?;
    }
    let service = CacheLayer::new(store.clone(), hit_policy()).layer(service_fn(|_: u64| async {
        Ok::<_, std::convert::Infallible>(value())
    }));
    for id in 0..KEYS {
        service.clone().oneshot(id).await?;
    }

    let ops = 20_000;
    let raw_get = || ClusterGet {
        mget: false,
        connection: raw.clone(),
        keys: Arc::clone(&keys),
    };
    let (subject, baseline) = best_of(
        || sequential(ops, LayerGet(service.clone())),
        || sequential(ops, raw_get()),
    )
    .await;
    print_ratio("hit_sequential", backend, subject, baseline);

    let before = commands_per_master(&cluster);
    let (subject, baseline) = best_of(
        || concurrent(ops * 5, || LayerGet(service.clone())),
        || concurrent(ops * 5, raw_get),
    )
    .await;
    print_ratio("hit_64_tasks", backend, subject, baseline);
    // How evenly the hits above (and the raw GETs of as many keys) loaded the masters.
    let after = commands_per_master(&cluster);
    let loads: Vec<u64> = after
        .iter()
        .map(|(port, count)| {
            let earlier = before
                .iter()
                .find(|(p, _)| p == port)
                .map_or(0, |(_, c)| *c);
            count - earlier
        })
        .collect();
    let mean = loads.iter().sum::<u64>() as f64 / loads.len() as f64;
    let busiest = loads.iter().copied().max().unwrap_or(0) as f64;
    println!(
        "{{\"scenario\":\"shard_load_hit_64_tasks\",\"backend\":\"cluster\",\"commands_per_master\":{loads:?},\"busiest_over_mean\":{:.3}}}",
        busiest / mean
    );

    // What a hit's second key costs by itself on the cluster client: a raw two-key `MGET` in one slot.
    let raw_mget = || ClusterGet {
        mget: true,
        ..raw_get()
    };
    let (subject, baseline) = best_of(
        || concurrent(ops * 5, raw_mget),
        || concurrent(ops * 5, raw_get),
    )
    .await;
    print_ratio("raw_mget2_vs_get_64_tasks", backend, subject, baseline);

    let (subject, baseline) = put_two_tags(&store, raw.clone()).await;
    print_ratio("put_two_tags", backend, subject, baseline);

    // A tag invalidation: one record per group, one pipeline and one WAIT per master, against the
    // same invalidation on one standalone node (one script).
    let single = RedisServer::start();
    let one_node = RedisStore::<String>::connect(&single.url(), options.clone())?;
    let node_ms = invalidation_ms(&one_node).await?;
    for groups in [8u16, 32] {
        let prefix = format!("inv{groups}:");
        let grouped = options.clone().key_prefix(prefix)?.cluster_groups(groups);
        let grouped = RedisStore::<String>::connect_cluster(&urls, grouped)?;
        let unacknowledged = RedisStore::<String>::connect_cluster(
            &urls,
            options
                .clone()
                .key_prefix(format!("inv{groups}n:"))?
                .cluster_groups(groups)
                .replica_acks(0),
        )?;
        let (waited, unwaited) = (
            invalidation_ms(&grouped).await?,
            invalidation_ms(&unacknowledged).await?,
        );
        println!(
            "{{\"scenario\":\"invalidate_tag_{groups}_groups\",\"backend\":\"cluster\",\"ms\":{waited:.4},\"without_wait_ms\":{unwaited:.4},\"one_node_ms\":{node_ms:.4},\"ratio\":{:.2}}}",
            waited / node_ms
        );
    }
    Ok(())
}
