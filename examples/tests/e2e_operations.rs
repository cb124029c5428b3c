//! The generated `prometheus.yml`s run by real Prometheus servers on
//! loopback, the way an operator would deploy them:
//!
//! * federation: a global server federates the `mcp_mesh:*` recording rules
//!   and `up` from the server that scrapes the mesh, and nothing raw;
//! * remote write: the scraping server sends only `mcp_mesh:*` to a
//!   long-term store (a Prometheus with the remote-write receiver);
//! * sharding: two servers with `--shards 2` split the targets between them,
//!   each target scraped by exactly one.
//!
//! Every number that crosses a server is compared with the one the scraping
//! server recorded at the same timestamp: federation and remote write must
//! carry values, not approximations.
//!
//! Needs `prometheus` (Debian's package; `.ci/test` installs it): a missing
//! binary fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use mesh_metrics::rules::{self, ScrapeOptions, SloConfig};
use mesh_metrics_tests::{ChildGuard, TempDir, percent_encode, required_tool};

mod support;
use support::{api, eventually, free_loopback_port, query, start_demo};

/// The generated configuration with every interval at one second, so the
/// test need not wait for the production defaults.
fn fast(config: String) -> String {
    ["scrape_interval: 15s", "scrape_interval: 30s", "evaluation_interval: 30s", "scrape_timeout: 10s"].iter().fold(
        config,
        |config, slow| {
            let key = slow.split(':').next().expect("key");
            config.replace(slow, &format!("{key}: 1s"))
        },
    )
}

/// Starts a Prometheus on a free loopback port with `options`' generated
/// configuration, in its own directory under `dir`.
fn start_prometheus(dir: &TempDir, name: &str, options: &ScrapeOptions, flags: &[&str]) -> (ChildGuard, SocketAddr) {
    let home = dir.path().join(name);
    std::fs::create_dir_all(&home).expect("server directory");
    let config = rules::to_yaml(&rules::scrape_config(options).expect("valid options")).expect("yaml");
    let config_path = home.join("prometheus.yml");
    std::fs::write(&config_path, fast(config)).expect("write prometheus.yml");
    let listen = free_loopback_port();
    let log = std::fs::File::create(home.join("prometheus.log")).expect("prometheus log");
    let server = ChildGuard::spawn(
        "prometheus",
        Command::new(required_tool("prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", home.join("data").display()))
            .arg(format!("--web.listen-address={listen}"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(log),
    )
    .logging_to(home.join("prometheus.log"));
    (server, listen)
}

fn write_rules(dir: &TempDir) -> String {
    let slo = SloConfig { evaluation_interval: "1s".to_owned(), ..SloConfig::default() };
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, rules::to_yaml(&rules::rule_file(&slo).expect("valid objectives")).expect("rules"))
        .expect("write rules.yml");
    path.display().to_string()
}

/// Labels that say where a series travelled through, not what it measures.
const ROUTING_LABELS: [&str; 5] = ["__name__", "job", "instance", "cluster", "source_cluster"];

/// A series' identity without its routing labels.
fn identity(metric: &serde_json::Value) -> String {
    let labels = metric.as_object().expect("labels");
    let kept: BTreeMap<&str, &str> = labels
        .iter()
        .filter(|(name, _)| !ROUTING_LABELS.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str(), value.as_str().expect("label value")))
        .collect();
    format!("{}{kept:?}", labels["__name__"].as_str().expect("name"))
}

/// The raw samples of `selector` over the `window` before `at` (seconds
/// since the epoch): identity → timestamp (ms) → value as Prometheus wrote it.
fn raw_samples(server: SocketAddr, selector: &str, window: &str, at: f64) -> BTreeMap<String, BTreeMap<i64, String>> {
    let mut samples = BTreeMap::new();
    let path = format!("/api/v1/query?query={}&time={at:.3}", percent_encode(&format!("{selector}[{window}]")));
    let result = api(server, &path).and_then(|data| data["result"].as_array().cloned()).unwrap_or_default();
    for series in result {
        let points: &mut BTreeMap<i64, String> = samples.entry(identity(&series["metric"])).or_default();
        for point in series["values"].as_array().expect("values") {
            let at = (point[0].as_f64().expect("timestamp") * 1000.0).round() as i64;
            points.insert(at, point[1].as_str().expect("value").to_owned());
        }
    }
    samples
}

/// The recording rules whose carriage the test checks: a rate, a ratio with
/// a default of 0, and one from the process collector.
const CARRIED: [&str; 3] = ["mcp_mesh:request_rate", "mcp_mesh:slo:error_ratio:rate5m", "mcp_mesh:process_fds:ratio"];

/// Waits until `upstream` has recorded every one of [`CARRIED`] and
/// `downstream` holds samples of each series at timestamps `upstream`
/// recorded, then asserts every such sample equal and every upstream series
/// present downstream. Returns how many samples it compared.
fn assert_carried(
    what: &str,
    processes: &mut [&mut ChildGuard],
    upstream: SocketAddr,
    downstream: SocketAddr,
) -> usize {
    let selector = format!("{{__name__=~\"{}\"}}", CARRIED.join("|"));
    let (expected, carried) = eventually(what, processes, || {
        // Both servers as of the same moment, a little in the past so that
        // what the upstream server recorded by then has had time to travel.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
        let at = now - 5.0;
        let expected = raw_samples(upstream, &selector, "1m", at);
        let carried = raw_samples(downstream, &selector, "1m", at);
        let every_rule =
            CARRIED.iter().all(|name| expected.keys().any(|series| series.starts_with(&format!("{name}{{"))));
        let all_series = every_rule && expected.keys().all(|series| carried.contains_key(series));
        let common = |series: &String| {
            let there = &carried[series];
            expected[series].keys().filter(|at| there.contains_key(at)).count()
        };
        let nothing_else = carried.keys().all(|series| expected.contains_key(series));
        (all_series && nothing_else && expected.keys().all(|series| common(series) > 0)).then_some((expected, carried))
    });
    let mut compared = 0;
    for (series, points) in &expected {
        assert!(carried.contains_key(series), "{what}: {series} is missing downstream");
        for (at, value) in points {
            if let Some(there) = carried[series].get(at) {
                assert_eq!(there, value, "{what}: {series} at {at} ms");
                compared += 1;
            }
        }
    }
    let unexpected: Vec<&String> = carried.keys().filter(|series| !expected.contains_key(*series)).collect();
    assert!(unexpected.is_empty(), "{what}: series that the upstream server does not have: {unexpected:?}");
    compared
}

fn metric_names(server: SocketAddr) -> Vec<String> {
    api(server, "/api/v1/label/__name__/values")
        .and_then(|names| names.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn federation_and_remote_write_carry_the_recording_rules_and_nothing_raw() {
    let dir = TempDir::new("mesh-metrics-operations");
    let (mut demo, target) = start_demo(&["--workers", "2"]);

    // The long-term store: receives remote write, scrapes nothing.
    let (mut store, store_addr) = start_prometheus(
        &dir,
        "store",
        &ScrapeOptions { static_targets: Vec::new(), kubernetes: false, ..ScrapeOptions::default() },
        &["--web.enable-remote-write-receiver"],
    );
    // The server that scrapes the mesh, evaluates the rules and writes them on.
    let (mut cluster, cluster_addr) = start_prometheus(
        &dir,
        "cluster",
        &ScrapeOptions {
            static_targets: vec![target.to_string()],
            rule_files: vec![write_rules(&dir)],
            remote_write: Some(format!("http://{store_addr}/api/v1/write")),
            external_labels: BTreeMap::from([("cluster".to_owned(), "a".to_owned())]),
            kubernetes: false,
            ..ScrapeOptions::default()
        },
        &[],
    );
    // The global server: federates from the cluster server.
    let (mut global, global_addr) = start_prometheus(
        &dir,
        "global",
        &ScrapeOptions {
            federate: vec![cluster_addr.to_string()],
            static_targets: Vec::new(),
            kubernetes: false,
            ..ScrapeOptions::default()
        },
        &[],
    );
    let log = |name: &str| std::fs::read_to_string(dir.path().join(name).join("prometheus.log")).unwrap_or_default();
    let mut all = [&mut demo, &mut store, &mut cluster, &mut global];

    let up = eventually("the cluster server scrapes the demo", &mut all, || {
        query(cluster_addr, "up{job=\"mcp-mesh-local\"}").first().map(|s| s["value"][1].clone())
    });
    assert_eq!(up, "1", "cluster server log:\n{}", log("cluster"));

    // Federation: the recording rules, sample for sample, with the cluster's
    // external label and the source the federation job adds.
    let federated = assert_carried("federation", &mut all, cluster_addr, global_addr);
    assert!(federated > 0, "no sample compared; global server log:\n{}", log("global"));
    let labelled = query(global_addr, "mcp_mesh:request_rate{cluster=\"a\",source_cluster=\"127.0.0.1\"}");
    assert!(!labelled.is_empty(), "federated series carry cluster and source_cluster");
    let up = query(global_addr, "up{job=\"mcp-mesh-local\",source_cluster=\"127.0.0.1\"}");
    assert_eq!(up.len(), 1, "the demo's up is federated: {up:?}");
    // Nothing raw: only rules, `up` and the federation job's own scrape series.
    for name in metric_names(global_addr) {
        assert!(
            name.starts_with("mcp_mesh:") || name == "up" || name.starts_with("scrape_"),
            "the global server holds {name}, which federation should not carry"
        );
    }

    // Remote write: the same rules, sample for sample, and only them.
    let written = assert_carried("remote write", &mut all, cluster_addr, store_addr);
    assert!(written > 0, "no sample compared; store log:\n{}", log("store"));
    assert!(!query(store_addr, "mcp_mesh:request_rate{cluster=\"a\"}").is_empty(), "external label on written series");
    let names = metric_names(store_addr);
    assert!(names.iter().any(|name| name == "mcp_mesh:request_rate"), "{names:?}");
    for name in &names {
        assert!(name.starts_with("mcp_mesh:"), "the store received {name}; remote write keeps only mcp_mesh:*");
    }
}

/// Prometheus' `hashmod`: the big-endian u64 of bytes 8..16 of the MD5 of
/// the value, modulo `modulus`. Computed by Python's hashlib, a reference
/// independent of the code under test.
fn hashmod(value: &str, modulus: u64) -> u64 {
    let output = Command::new("python3")
        .args([
            "-c",
            "import hashlib, sys; d = hashlib.md5(sys.argv[1].encode()).digest(); \
             print(int.from_bytes(d[8:16], 'big') % int(sys.argv[2]))",
            value,
            &modulus.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("a number")
}

#[test]
fn two_shards_split_the_targets_between_them() {
    let dir = TempDir::new("mesh-metrics-shards");
    // Four demos on ephemeral ports, replaced until both shards get some:
    // a split that puts every target on one shard would prove nothing.
    let mut demos: Vec<(ChildGuard, SocketAddr)> = Vec::new();
    loop {
        while demos.len() < 4 {
            demos.push(start_demo(&["--workers", "1"]));
        }
        let owners: BTreeSet<u64> = demos.iter().map(|(_, addr)| hashmod(&addr.to_string(), 2)).collect();
        if owners.len() == 2 {
            break;
        }
        demos.pop();
    }
    let targets: Vec<String> = demos.iter().map(|(_, addr)| addr.to_string()).collect();
    let predicted: Vec<BTreeSet<String>> =
        (0..2).map(|shard| targets.iter().filter(|target| hashmod(target, 2) == shard).cloned().collect()).collect();
    let mut shards: Vec<(ChildGuard, SocketAddr)> = (0..2)
        .map(|shard| {
            let options = ScrapeOptions {
                static_targets: targets.clone(),
                shard: Some((2, shard)),
                kubernetes: false,
                ..ScrapeOptions::default()
            };
            start_prometheus(&dir, &format!("shard-{shard}"), &options, &[])
        })
        .collect();
    let addrs: Vec<SocketAddr> = shards.iter().map(|(_, addr)| *addr).collect();
    let mut processes: Vec<&mut ChildGuard> =
        demos.iter_mut().chain(shards.iter_mut()).map(|(process, _)| process).collect();

    // Each shard's targets once every target is accounted for (kept or
    // dropped) and every kept one has been scraped successfully.
    let kept: Vec<BTreeSet<String>> = addrs
        .iter()
        .map(|server| {
            eventually("a shard scrapes its targets", &mut processes, || {
                let data = api(*server, "/api/v1/targets")?;
                let active = data["activeTargets"].as_array()?;
                let dropped = data["droppedTargets"].as_array()?;
                if active.len() + dropped.len() != targets.len() {
                    return None;
                }
                let healthy = active.iter().all(|target| target["health"] == "up");
                healthy.then(|| {
                    active
                        .iter()
                        .filter_map(|target| target["labels"]["instance"].as_str().map(str::to_owned))
                        .collect::<BTreeSet<String>>()
                })
            })
        })
        .collect();
    assert!(kept[0].is_disjoint(&kept[1]), "a target is scraped by both shards: {kept:?}");
    assert_eq!(kept, predicted, "each target on the shard its address hashes to");
    let covered: BTreeSet<String> = kept[0].union(&kept[1]).cloned().collect();
    assert_eq!(covered, targets.iter().cloned().collect(), "every target is scraped by one shard");
    // What the shards scraped is what they hold: each shard's series come
    // from its own targets, all of them.
    for (server, mine) in addrs.iter().zip(&kept) {
        let held = eventually("a shard's series", &mut processes, || {
            let instances: BTreeSet<String> = query(*server, "count by (instance) (mcp_mesh_requests_total)")
                .iter()
                .filter_map(|series| series["metric"]["instance"].as_str().map(str::to_owned))
                .collect();
            (instances.len() >= mine.len()).then_some(instances)
        });
        assert_eq!(&held, mine, "the shard at {server} holds the series of exactly its own targets");
    }
}
