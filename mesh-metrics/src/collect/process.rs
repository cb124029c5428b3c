//! The standard process metrics, read from `/proc/self` on Linux. Elsewhere
//! nothing is read and nothing is exposed: a value that cannot be read is
//! left out, never guessed.

use super::{descriptor, publish};
use crate::names::process as names;
use crate::registry::{Descriptor, MetricKind, Registry};

/// What the process collector reads, in base units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds (to the kernel's 10 ms tick).
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub resident_memory_bytes: f64,
    /// Virtual memory, bytes.
    pub virtual_memory_bytes: f64,
    /// The address-space limit, bytes (`u64::MAX` when unlimited, as
    /// client_golang reports it).
    pub virtual_memory_max_bytes: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// The soft limit on open file descriptors.
    pub max_fds: f64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// OS threads.
    pub threads: f64,
    /// Bytes received and sent on every interface of the process's network
    /// namespace, if `/proc/self/net/dev` could be read.
    pub network: Option<(f64, f64)>,
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

/// Reads the process's metrics and writes them into `registry`. Where they
/// cannot be read (not Linux, `/proc` not mounted) nothing is written, and the
/// failure is logged once.
pub fn collect_process(registry: &Registry) {
    let stats = match ProcessStats::read() {
        Ok(stats) => stats,
        Err(error) => {
            static LOGGED: std::sync::Once = std::sync::Once::new();
            LOGGED.call_once(|| tracing::warn!(%error, "mesh-metrics: process metrics are not available here"));
            return;
        }
    };
    let values = [
        stats.cpu_seconds,
        stats.resident_memory_bytes,
        stats.virtual_memory_bytes,
        stats.virtual_memory_max_bytes,
        stats.open_fds,
        stats.max_fds,
        stats.start_time_seconds,
        stats.threads,
    ];
    for (descriptor, value) in DESCRIPTORS.iter().zip(values) {
        publish(registry, descriptor, &[], value);
    }
    if let (Some((received, sent)), [.., receive, transmit]) = (stats.network, &DESCRIPTORS) {
        publish(registry, receive, &[], received);
        publish(registry, transmit, &[], sent);
    }
}

impl ProcessStats {
    /// Reads them now.
    #[cfg(target_os = "linux")]
    pub fn read() -> std::io::Result<Self> {
        linux::read()
    }

    /// Reads them now: not available on this platform.
    #[cfg(not(target_os = "linux"))]
    pub fn read() -> std::io::Result<Self> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "process metrics are read from /proc, on Linux"))
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{Error, ErrorKind, Result};

    use super::ProcessStats;

    /// `USER_HZ`: the unit of CPU times in `/proc`. It is 100 on every Linux
    /// architecture Rust targets (Prometheus' procfs makes the same choice).
    const TICKS_PER_SECOND: f64 = 100.0;

    pub(super) fn read() -> Result<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        // The command name may hold spaces and parentheses: fields start after the last `)`.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        // `fields[0]` is field 3 of proc(5).
        let field = |number: usize| -> Result<f64> {
            fields
                .get(number - 3)
                .and_then(|text| text.parse::<f64>().ok())
                .ok_or_else(|| Error::new(ErrorKind::InvalidData, format!("/proc/self/stat field {number}")))
        };
        let cpu_seconds = (field(14)? + field(15)?) / TICKS_PER_SECOND;
        let threads = field(20)?;
        let started_ticks = field(22)?;
        let virtual_memory_bytes = field(23)?;

        let status = std::fs::read_to_string("/proc/self/status")?;
        let resident_kib = labelled(&status, "VmRSS:")
            .ok_or_else(|| Error::new(ErrorKind::InvalidData, "VmRSS in /proc/self/status"))?;

        let boot = labelled(&std::fs::read_to_string("/proc/stat")?, "btime")
            .ok_or_else(|| Error::new(ErrorKind::InvalidData, "btime in /proc/stat"))?;

        let limits = std::fs::read_to_string("/proc/self/limits")?;
        let soft_limit = |name: &str| -> Result<f64> {
            let line = limits
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .ok_or_else(|| Error::new(ErrorKind::InvalidData, format!("{name} in /proc/self/limits")))?;
            match line.split_whitespace().next() {
                Some("unlimited") => Ok(u64::MAX as f64),
                Some(value) => value.parse().map_err(|_| Error::new(ErrorKind::InvalidData, format!("{name} limit"))),
                None => Err(Error::new(ErrorKind::InvalidData, format!("{name} limit"))),
            }
        };

        Ok(ProcessStats {
            cpu_seconds,
            resident_memory_bytes: resident_kib * 1024.0,
            virtual_memory_bytes,
            virtual_memory_max_bytes: soft_limit("Max address space")?,
            open_fds: std::fs::read_dir("/proc/self/fd")?.count() as f64,
            max_fds: soft_limit("Max open files")?,
            start_time_seconds: boot + started_ticks / TICKS_PER_SECOND,
            threads,
            network: std::fs::read_to_string("/proc/self/net/dev").ok().and_then(|dev| network(&dev)),
        })
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
            let stats = super::read().expect("this is Linux");
            assert!(stats.threads >= 1.0 && stats.open_fds >= 3.0 && stats.resident_memory_bytes > 0.0);
        }
    }
}
