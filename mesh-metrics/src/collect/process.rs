//! The standard process metrics, read from `/proc/self` on Linux. Elsewhere
//! nothing is read and nothing is exposed: a value that cannot be read is
//! left out, never guessed.

use super::{descriptor, publish, withdraw};
use crate::names::process as names;
use crate::registry::{Descriptor, MetricKind, Registry};

/// What the process collector reads, in base units; `None` where its source
/// could not be read (the metric is then withdrawn, not left at its last value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds (to the kernel's 10 ms tick).
    pub cpu_seconds: Option<f64>,
    /// Resident memory, bytes.
    pub resident_memory_bytes: Option<f64>,
    /// Virtual memory, bytes.
    pub virtual_memory_bytes: Option<f64>,
    /// The address-space limit, bytes (`u64::MAX` when unlimited, as
    /// client_golang reports it).
    pub virtual_memory_max_bytes: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<f64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<f64>,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    /// OS threads.
    pub threads: Option<f64>,
    /// Bytes received on every interface of the process's network namespace.
    pub network_receive_bytes: Option<f64>,
    /// Bytes sent on every interface of the process's network namespace.
    pub network_transmit_bytes: Option<f64>,
}

impl ProcessStats {
    fn values(&self) -> [Option<f64>; 10] {
        [
            self.cpu_seconds,
            self.resident_memory_bytes,
            self.virtual_memory_bytes,
            self.virtual_memory_max_bytes,
            self.open_fds,
            self.max_fds,
            self.start_time_seconds,
            self.threads,
            self.network_receive_bytes,
            self.network_transmit_bytes,
        ]
    }
}

const DESCRIPTORS: [Descriptor; 10] = [
    descriptor(
        names::CPU_SECONDS_TOTAL,
        "Total user and system CPU time spent in seconds.",
        MetricKind::Counter,
        &[],
        Some("seconds"),
    ),
    descriptor(names::RESIDENT_MEMORY_BYTES, "Resident memory size in bytes.", MetricKind::Gauge, &[], Some("bytes")),
    descriptor(names::VIRTUAL_MEMORY_BYTES, "Virtual memory size in bytes.", MetricKind::Gauge, &[], Some("bytes")),
    descriptor(
        names::VIRTUAL_MEMORY_MAX_BYTES,
        "Maximum amount of virtual memory available in bytes.",
        MetricKind::Gauge,
        &[],
        Some("bytes"),
    ),
    descriptor(names::OPEN_FDS, "Number of open file descriptors.", MetricKind::Gauge, &[], None),
    descriptor(names::MAX_FDS, "Maximum number of open file descriptors.", MetricKind::Gauge, &[], None),
    descriptor(
        names::START_TIME_SECONDS,
        "Start time of the process since unix epoch in seconds.",
        MetricKind::Gauge,
        &[],
        Some("seconds"),
    ),
    descriptor(names::THREADS, "Number of OS threads in the process.", MetricKind::Gauge, &[], None),
    descriptor(
        names::NETWORK_RECEIVE_BYTES_TOTAL,
        "Number of bytes received by the process over the network.",
        MetricKind::Counter,
        &[],
        Some("bytes"),
    ),
    descriptor(
        names::NETWORK_TRANSMIT_BYTES_TOTAL,
        "Number of bytes sent by the process over the network.",
        MetricKind::Counter,
        &[],
        Some("bytes"),
    ),
];

/// Reads the process's metrics and writes them into `registry`. A metric
/// whose source cannot be read (not Linux, `/proc` not mounted, out of file
/// descriptors) is withdrawn until it can be read again; each change between
/// readable and not is logged.
pub fn collect_process(registry: &Registry) {
    let stats = ProcessStats::read();
    for (descriptor, value) in DESCRIPTORS.iter().zip(stats.values()) {
        match value {
            Some(value) => publish(registry, descriptor, &[], value),
            None => withdraw(registry, descriptor),
        }
        note_readable(&descriptor.name, value.is_some());
    }
}

/// Logs when a metric stops or starts being readable.
fn note_readable(metric: &str, readable: bool) {
    static UNREADABLE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut unreadable = UNREADABLE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let was_unreadable = unreadable.iter().any(|name| name == metric);
    match (readable, was_unreadable) {
        (false, false) => {
            unreadable.push(metric.to_owned());
            tracing::warn!(metric, "mesh-metrics: cannot read this process metric; it is left out of /metrics");
        }
        (true, true) => {
            unreadable.retain(|name| name != metric);
            tracing::info!(metric, "mesh-metrics: this process metric can be read again");
        }
        _ => {}
    }
}

impl ProcessStats {
    /// Reads them now, each from its own source.
    #[cfg(target_os = "linux")]
    pub fn read() -> Self {
        linux::read()
    }

    /// Reads them now: nothing is available on this platform.
    #[cfg(not(target_os = "linux"))]
    pub fn read() -> Self {
        Self::default()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::ProcessStats;

    /// `USER_HZ`: the unit of CPU times in `/proc`. It is 100 on every Linux
    /// architecture Rust targets (Prometheus' procfs makes the same choice).
    const TICKS_PER_SECOND: f64 = 100.0;

    pub(super) fn read() -> ProcessStats {
        let stat = std::fs::read_to_string("/proc/self/stat").ok().and_then(|text| Stat::parse(&text));
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|text| labelled(&text, "btime"));
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        let soft_limit = |name: &str| limits.as_deref().and_then(|limits| soft_limit(limits, name));
        let network = std::fs::read_to_string("/proc/self/net/dev").ok().and_then(|dev| network(&dev));
        ProcessStats {
            cpu_seconds: stat.as_ref().map(|stat| (stat.user_ticks + stat.system_ticks) / TICKS_PER_SECOND),
            resident_memory_bytes: status
                .as_deref()
                .and_then(|status| labelled(status, "VmRSS:"))
                .map(|kib| kib * 1024.0),
            virtual_memory_bytes: stat.as_ref().map(|stat| stat.virtual_bytes),
            virtual_memory_max_bytes: soft_limit("Max address space"),
            open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|entries| entries.count() as f64),
            max_fds: soft_limit("Max open files"),
            start_time_seconds: stat
                .as_ref()
                .zip(boot)
                .map(|(stat, boot)| boot + stat.started_ticks / TICKS_PER_SECOND),
            threads: stat.as_ref().map(|stat| stat.threads),
            network_receive_bytes: network.map(|(received, _)| received),
            network_transmit_bytes: network.map(|(_, sent)| sent),
        }
    }

    /// The fields of `/proc/self/stat` the collector uses.
    #[derive(Debug, PartialEq)]
    pub(super) struct Stat {
        user_ticks: f64,
        system_ticks: f64,
        threads: f64,
        started_ticks: f64,
        virtual_bytes: f64,
    }

    impl Stat {
        /// The command name may hold spaces and parentheses: fields start
        /// after the last `)`, where `fields[0]` is field 3 of proc(5).
        pub(super) fn parse(stat: &str) -> Option<Self> {
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |number: usize| fields.get(number - 3)?.parse::<f64>().ok();
            Some(Self {
                user_ticks: field(14)?,
                system_ticks: field(15)?,
                threads: field(20)?,
                started_ticks: field(22)?,
                virtual_bytes: field(23)?,
            })
        }
    }

    /// The soft limit of `name` in `/proc/self/limits` (`u64::MAX` for
    /// `unlimited`, as client_golang reports it).
    fn soft_limit(limits: &str, name: &str) -> Option<f64> {
        let line = limits.lines().find_map(|line| line.strip_prefix(name))?;
        match line.split_whitespace().next()? {
            "unlimited" => Some(u64::MAX as f64),
            value => value.parse().ok(),
        }
    }

    /// The number after `label` on the line that starts with it.
    fn labelled(text: &str, label: &str) -> Option<f64> {
        text.lines().find_map(|line| line.strip_prefix(label)?.split_whitespace().next()?.parse().ok())
    }

    /// Received and sent bytes, summed over every interface (the first and
    /// ninth numbers after `iface:`).
    fn network(dev: &str) -> Option<(f64, f64)> {
        let mut totals = (0.0, 0.0);
        for line in dev.lines().skip(2) {
            let (_, counters) = line.split_once(':')?;
            let numbers: Vec<f64> = counters.split_whitespace().map(|n| n.parse().ok()).collect::<Option<_>>()?;
            totals.0 += numbers.first()?;
            totals.1 += numbers.get(8)?;
        }
        Some(totals)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn reads_every_interface_of_net_dev() {
            let dev = "Inter-|   Receive                                                |  Transmit\n \
                       face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
                       lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  \
                       eth0: 2500      20    0    0    0     0          0         0      700       7    0    0    0     0       0          0\n";
            assert_eq!(super::network(dev), Some((3500.0, 1700.0)));
        }

        #[test]
        fn a_command_name_with_parentheses_and_spaces_is_skipped_whole() {
            // Fields 3 to 23 after a command name that holds `) (` and spaces.
            let stat = "42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 150 25 13 14 15 16 4 0 8765 1048576 99";
            let parsed = super::Stat::parse(stat).expect("parses");
            assert_eq!(
                parsed,
                super::Stat {
                    user_ticks: 150.0,
                    system_ticks: 25.0,
                    threads: 4.0,
                    started_ticks: 8765.0,
                    virtual_bytes: 1_048_576.0
                }
            );
            assert_eq!(super::Stat::parse("42 (truncated"), None);
            let stats = super::read();
            assert!(
                stats.threads >= Some(1.0) && stats.open_fds >= Some(3.0) && stats.resident_memory_bytes > Some(0.0)
            );
        }

        #[test]
        fn limits_read_soft_values_and_unlimited() {
            let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                          Max open files            1024                 524288               files\n\
                          Max address space         unlimited            unlimited            bytes\n";
            assert_eq!(super::soft_limit(limits, "Max open files"), Some(1024.0));
            assert_eq!(super::soft_limit(limits, "Max address space"), Some(u64::MAX as f64));
            assert_eq!(super::soft_limit(limits, "Max processes"), None);
        }
    }
}
