//! A private Redis Cluster: three masters with a replica each, on free loopback ports, made with
//! `redis-cli --cluster create`, with a short node timeout so that a killed master's replica takes over
//! within a few seconds.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, write_certificates, RedisServer, Tls, TlsFiles};

/// How long a node may be unreachable before the cluster fails it over, in ms.
const NODE_TIMEOUT_MS: u64 = 1_000;
const FORMING_LIMIT: Duration = Duration::from_secs(60);

/// A running private cluster; every node is killed when it is dropped.
///
/// ```no_run
/// let cluster = redis_test_server::RedisCluster::start();
/// let seeds = cluster.urls(); // one redis:// URL per node
/// # let _ = seeds;
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// With TLS: the certificates every node serves and trusts, and the directory holding them.
    tls: Option<(TlsFiles, tempfile::TempDir)>,
}

/// One line of `CLUSTER NODES`: a node's port, role and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node's ID in the cluster.
    pub id: String,
    /// The node's port on 127.0.0.1.
    pub port: u16,
    /// True for a master, false for a replica.
    pub master: bool,
    /// True when the cluster counts the node as failed (`fail` flag).
    pub failed: bool,
    /// Slots served (masters), as written by Redis: `0-5460`, ...
    pub slots: Vec<String>,
}

impl RedisCluster {
    /// Starts six nodes and joins them: three masters, one replica each.
    ///
    /// # Panics
    /// When `redis-server` or `redis-cli` is missing, or the cluster does not form within a minute.
    pub fn start() -> Self {
        Self::form(None)
    }

    /// Like [`start`](Self::start), with every node speaking TLS only (`--tls-cluster` and
    /// `--tls-replication` too), all with certificates of one authority made on the spot; the URLs are
    /// `rediss://localhost:<port>`, and [`tls`](Self::tls) has the authority to trust.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_tls() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("redis-test-cluster-")
            .tempdir()
            .expect("temporary directory");
        let files = write_certificates(dir.path());
        Self::form(Some((files, dir)))
    }

    /// The certificates of a TLS cluster.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref().map(|(files, _)| files)
    }

    fn form(tls: Option<(TlsFiles, tempfile::TempDir)>) -> Self {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                // The bus port gets a free port of its own: by default it is the node's port plus
                // 10,000, which may be taken, and past 65,535 for a node port above 55,535.
                let bus = free_port().to_string();
                let args = [
                    "--cluster-port",
                    &bus,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    &NODE_TIMEOUT_MS.to_string(),
                    // The slots of a master that is down fail alone; the others keep being served.
                    "--cluster-require-full-coverage",
                    "no",
                ]
                .map(str::to_owned)
                .to_vec();
                match &tls {
                    None => RedisServer::launch_with(Tls::Off, node_port(), args),
                    Some((files, _)) => {
                        let mut args = args;
                        args.extend(
                            ["--tls-cluster", "yes", "--tls-replication", "yes"].map(str::to_owned),
                        );
                        RedisServer::launch_with(Tls::Shared(files.clone()), node_port(), args)
                    }
                }
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let cluster = Self { nodes, tls };
        let mut create = vec!["create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "1"]);
        cluster.cluster_command(&create);
        cluster.wait_until_healthy(3, FORMING_LIMIT);
        cluster.wait_until_replicas_synced(FORMING_LIMIT);
        cluster
    }

    /// Waits until every running replica has its master link up: a replica that never synced refuses
    /// to take over (its data is too old), so a failover test must not start before.
    ///
    /// # Panics
    /// When that does not happen within `limit`.
    pub fn wait_until_replicas_synced(&self, limit: Duration) {
        let started = Instant::now();
        for node in self.nodes.iter().filter(|node| node.is_answering()) {
            loop {
                let info = node.command(&["INFO", "replication"]);
                if info.contains("role:master") || info.contains("master_link_status:up") {
                    break;
                }
                assert!(
                    started.elapsed() < limit,
                    "replica {} not synced after {limit:?}: {info}",
                    node.port()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// `redis://127.0.0.1:<port>` of every node, masters and replicas: seeds for a cluster client.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The node listening on `port`.
    ///
    /// # Panics
    /// When no node of this cluster listens there.
    pub fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// The node listening on `port`, to pause or resume it.
    ///
    /// # Panics
    /// When no node of this cluster listens there.
    pub fn node_ref(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// The cluster as a running node sees it (`CLUSTER NODES`).
    ///
    /// # Panics
    /// When no node is running.
    pub fn topology(&self) -> Vec<ClusterNode> {
        let seed = self
            .nodes
            .iter()
            .find(|node| node.is_answering())
            .expect("a running node");
        parse_nodes(&seed.command(&["CLUSTER", "NODES"]))
    }

    /// Ports of the masters, as a running node sees them.
    pub fn masters(&self) -> Vec<u16> {
        self.topology()
            .into_iter()
            .filter(|node| node.master && !node.failed)
            .map(|node| node.port)
            .collect()
    }

    /// Moves `slots` hash slots from the master on port `from` to the master on port `to`, keys
    /// included (`redis-cli --cluster reshard`, which migrates them with `MIGRATE`), while clients go
    /// on using the cluster. The slots moved are the lowest `from` serves.
    ///
    /// # Panics
    /// When either port is not a master's, or the resharding fails.
    pub fn reshard(&self, from: u16, to: u16, slots: u32) {
        let topology = self.topology();
        let id = |port: u16| {
            topology
                .iter()
                .find(|node| node.port == port && node.master)
                .unwrap_or_else(|| panic!("no master on port {port}: {topology:?}"))
                .id
                .clone()
        };
        let (from_id, to_id, count) = (id(from), id(to), slots.to_string());
        self.cluster_command(&[
            "reshard",
            &format!("127.0.0.1:{from}"),
            "--cluster-from",
            &from_id,
            "--cluster-to",
            &to_id,
            "--cluster-slots",
            &count,
            "--cluster-pipeline",
            "100",
        ]);
    }

    /// Runs `redis-cli --cluster <args> --cluster-yes`, speaking TLS to a TLS cluster.
    ///
    /// # Panics
    /// When `redis-cli` is missing or fails.
    fn cluster_command(&self, args: &[&str]) {
        let mut cli = Command::new("redis-cli");
        if let Some((files, _)) = &self.tls {
            cli.args(["--tls", "--cacert"])
                .arg(files.dir().join("ca.pem"));
        }
        let output = cli
            .arg("--cluster")
            .args(args)
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run redis-cli ({error}): {}", crate::INSTALL_HINT)
            });
        assert!(
            output.status.success(),
            "redis-cli --cluster {} failed:\n{}{}",
            args[0],
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Waits until every running node reports `cluster_state:ok`, with every slot served and exactly
    /// `masters` masters, all of them running (a killed master counts until it is failed over).
    ///
    /// # Panics
    /// When that does not happen within `limit`.
    pub fn wait_until_healthy(&self, masters: usize, limit: Duration) {
        let started = Instant::now();
        loop {
            let running: Vec<&RedisServer> = self
                .nodes
                .iter()
                .filter(|node| node.is_answering())
                .collect();
            let states: BTreeMap<u16, String> = running
                .iter()
                .map(|node| (node.port(), node.command(&["CLUSTER", "INFO"])))
                .collect();
            let all_ok = states.values().all(|info| {
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
            // A killed master still counts as one until the others flag it failed.
            let live_masters = self
                .masters()
                .into_iter()
                .filter(|port| states.contains_key(port))
                .count();
            if all_ok && live_masters == masters && self.masters().len() == masters {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "cluster not healthy after {limit:?}: {states:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A free port Redis accepts for a cluster node: at most 55,535 (it refuses higher ones, whose default
/// bus port would not exist, even with `--cluster-port` set).
fn node_port() -> u16 {
    loop {
        let port = free_port();
        if port <= 55_535 {
            return port;
        }
    }
}

fn parse_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // <id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slots...>
            let address = fields.get(1)?;
            let port = address
                .split('@')
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            let flags = fields.get(2)?;
            Some(ClusterNode {
                id: (*fields.first()?).to_owned(),
                port,
                master: flags.contains("master"),
                failed: flags.split(',').any(|flag| flag == "fail"),
                slots: fields
                    .iter()
                    .skip(8)
                    .map(|slot| (*slot).to_owned())
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cluster_nodes() {
        let text = "07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected\n\
                    e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460\n\
                    6ec2 127.0.0.1:30002@40002 master,fail - 1426238316232 1426238315228 2 connected 5461-10922\n";
        let nodes = parse_nodes(text);
        assert_eq!(nodes.len(), 3);
        assert_eq!((nodes[0].port, nodes[0].master), (30004, false));
        assert_eq!(nodes[1].slots, ["0-5460"]);
        assert!(nodes[2].failed && nodes[2].master);
    }
}
