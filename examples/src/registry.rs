//! A mesh registry: agents register, send heartbeats and leave. It keeps the
//! guide's registry gauge as `mcp_mesh_registry_agents{status}` (the guide's
//! `_total` dropped: it is a gauge), written through the `metrics` facade to
//! show that facade metrics land on the same `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;

use mesh_metrics::instrumented;

/// The health of a registered agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentStatus {
    /// Heartbeats arrive.
    Healthy,
    /// Missed its last heartbeat.
    Unhealthy,
}

impl AgentStatus {
    const ALL: [Self; 2] = [Self::Healthy, Self::Unhealthy];

    fn label(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// Why a registry call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// No agent of that name is registered.
    NotRegistered(String),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotRegistered(name) => write!(f, "agent {name:?} is not registered"),
        }
    }
}

impl std::error::Error for RegistryError {}

/// The registry.
#[derive(Debug, Default)]
pub struct MeshRegistry {
    agents: Mutex<HashMap<String, AgentStatus>>,
}

#[instrumented(agent = "registry")]
impl MeshRegistry {
    /// An empty registry; describes its gauge.
    #[instrumented(skip)]
    pub fn new() -> Self {
        metrics::describe_gauge!(mesh_metrics::names::REGISTRY_AGENTS, "Total number of registered agents");
        let registry = Self::default();
        registry.publish(&HashMap::new());
        registry
    }

    /// Registers (or re-registers) an agent as healthy.
    pub fn register(&self, name: &str) -> Result<(), RegistryError> {
        self.update(|agents| {
            agents.insert(name.to_owned(), AgentStatus::Healthy);
            Ok(())
        })
    }

    /// Records a heartbeat, or a missed one.
    pub fn heartbeat(&self, name: &str, healthy: bool) -> Result<(), RegistryError> {
        self.update(|agents| {
            let status = agents.get_mut(name).ok_or_else(|| RegistryError::NotRegistered(name.to_owned()))?;
            *status = if healthy { AgentStatus::Healthy } else { AgentStatus::Unhealthy };
            Ok(())
        })
    }

    /// Removes an agent.
    pub fn deregister(&self, name: &str) -> Result<(), RegistryError> {
        self.update(|agents| agents.remove(name).map(drop).ok_or_else(|| RegistryError::NotRegistered(name.to_owned())))
    }

    fn update(
        &self,
        change: impl FnOnce(&mut HashMap<String, AgentStatus>) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let mut agents = self.agents.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = change(&mut agents);
        self.publish(&agents);
        result
    }

    fn publish(&self, agents: &HashMap<String, AgentStatus>) {
        for status in AgentStatus::ALL {
            let count = agents.values().filter(|s| **s == status).count();
            metrics::gauge!(mesh_metrics::names::REGISTRY_AGENTS, "status" => status.label()).set(count as f64);
        }
    }
}
