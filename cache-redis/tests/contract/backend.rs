//! The Redis a contract test runs against: one private server, or a private cluster of three masters
//! with a replica each, as the including test file's `ON_CLUSTER` says.

// Each test binary includes the contract files it runs, and uses only part of this.
#![allow(dead_code)]

use cache_core::codec::{Bincode, Codec};
use cache_redis::redis;
use cache_redis::{RedisOptions, RedisStore};
use redis_test_server::{RedisCluster, RedisServer};

pub(crate) enum TestRedis {
    Node(RedisServer),
    Cluster(RedisCluster),
}

impl TestRedis {
    pub(crate) fn start() -> Self {
        if crate::ON_CLUSTER {
            Self::Cluster(RedisCluster::start())
        } else {
            Self::Node(RedisServer::start())
        }
    }

    pub(crate) fn connect<V>(&self, options: RedisOptions) -> RedisStore<V> {
        self.with_codec(options, Bincode)
    }

    pub(crate) fn with_codec<V, C: Codec>(
        &self,
        options: RedisOptions,
        codec: C,
    ) -> RedisStore<V, C> {
        match self {
            Self::Node(server) => RedisStore::with_codec(&server.url(), options, codec),
            Self::Cluster(cluster) => {
                RedisStore::cluster_with_codec(&cluster.urls(), options, codec)
            }
        }
        .expect("a valid URL")
    }

    /// A store on a Redis that is not there (nothing listens on port 1).
    pub(crate) fn unreachable<V>(options: RedisOptions) -> RedisStore<V> {
        let nowhere = "redis://127.0.0.1:1";
        if crate::ON_CLUSTER {
            RedisStore::connect_cluster(&[nowhere], options)
        } else {
            RedisStore::connect(nowhere, options)
        }
        .expect("a valid URL")
    }

    /// Runs a command whose first argument is its only key, on the node holding that key; the reply
    /// as `RedisServer::command` gives it.
    pub(crate) fn command(&self, args: &[&str]) -> String {
        match self {
            Self::Node(server) => server.command(args),
            Self::Cluster(cluster) => {
                let client = redis::cluster::ClusterClient::new(cluster.urls()).expect("client");
                let mut conn = client.get_connection().expect("a cluster connection");
                let mut command = redis::cmd(args[0]);
                for arg in &args[1..] {
                    command.arg(*arg);
                }
                let reply = command.query::<redis::Value>(&mut conn).expect("a reply");
                text(reply)
            }
        }
    }

    /// How many times the server (every node, on a cluster) ran `command`, from `INFO commandstats`.
    pub(crate) fn calls_of(&self, command: &str) -> u64 {
        let servers: Vec<String> = match self {
            Self::Node(server) => vec![server.command(&["INFO", "commandstats"])],
            Self::Cluster(cluster) => cluster
                .topology()
                .into_iter()
                .map(|node| {
                    cluster
                        .node_ref(node.port)
                        .command(&["INFO", "commandstats"])
                })
                .collect(),
        };
        let prefix = format!("cmdstat_{command}:calls=");
        servers
            .iter()
            .flat_map(|stats| stats.lines())
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
            .sum()
    }
}

fn text(reply: redis::Value) -> String {
    match reply {
        redis::Value::Nil => String::new(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::Okay => "OK".to_owned(),
        redis::Value::Array(items) => items.into_iter().map(text).collect::<Vec<_>>().join("\n"),
        other => redis::from_redis_value::<String>(other).unwrap_or_default(),
    }
}
