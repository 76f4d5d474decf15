//! The tenant table: every deployment the edge serves, by organization and deployment slug.
//!
//! A [`Snapshot`] is immutable. The sync loop builds a new one next to the current one and
//! publishes it with a single atomic store, so a request reads either the old or the new table
//! and never a mix.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use mockforge_engine::Mock;
use mockforge_snapshot::PlanLimits;
use uuid::Uuid;

use crate::chaos::ChaosConfig;
use crate::proxy::ProxyConfig;
use crate::plugins::PluginChain;
use crate::FastHasher;

/// One deployment with its compiled mock.
pub struct ServedDeployment {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_slug: String,
    pub slug: String,
    pub plan: String,
    /// Hex SHA-256 of the compiled document.
    pub document_sha256: String,
    /// The configuration the mock was compiled with.
    pub config: serde_json::Value,
    /// Shared with the next snapshot when only the deployment's metadata changes.
    pub mock: Arc<Mock>,
    /// Request limits of the deployment's plan, from [`crate::limits::limits_for`].
    pub limits: PlanLimits,
    /// Start of one of the organization's 30-day quota periods, in Unix seconds, from
    /// [`mockforge_snapshot::DeploymentRecord::period_start`].
    pub period_start: Option<i64>,
    /// Chaos settings from `config.chaos`, if any.
    pub chaos: Option<Arc<ChaosConfig>>,
    /// Upstream settings from `config.proxy`, if any.
    pub proxy: Option<Arc<ProxyConfig>>,
}

impl std::fmt::Debug for ServedDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedDeployment")
            .field("id", &self.id)
            .field("org_slug", &self.org_slug)
            .field("slug", &self.slug)
            .field("plan", &self.plan)
            .field("document_sha256", &self.document_sha256)
            .finish_non_exhaustive()
    }
}

/// Result of looking up a deployment by slugs.
#[derive(Debug)]
pub enum Lookup<'a> {
    Found(&'a Arc<ServedDeployment>),
    UnknownOrg,
    UnknownDeployment,
}

/// An organization's deployments by lowercase slug.
type SlugMap = HashMap<String, Arc<ServedDeployment>, FastHasher>;

/// An immutable table of served deployments.
#[derive(Default)]
pub struct Snapshot {
    /// Configuration version of the control plane this table reflects; 0 before the first sync.
    version: u64,
    by_id: HashMap<Uuid, Arc<ServedDeployment>>,
    /// Lowercase organization slug to lowercase deployment slug to deployment.
    by_slug: HashMap<String, SlugMap, FastHasher>,
    /// In single-document mode, the mock that responds to every request.
    single: Option<Arc<Mock>>,
    /// Plugin chains of the deployments that list plugins, by deployment id.
    plugins: HashMap<Uuid, Arc<PluginChain>>,
}

impl Snapshot {
    /// Builds a table from deployments. When two deployments share an organization and
    /// deployment slug, the one with the greater id wins and a warning is logged, because the
    /// control plane should never send such a pair.
    pub fn new(version: u64, deployments: impl IntoIterator<Item = Arc<ServedDeployment>>) -> Self {
        let by_id: HashMap<Uuid, Arc<ServedDeployment>> = deployments
            .into_iter()
            .map(|deployment| (deployment.id, deployment))
            .collect();

        let mut by_slug: HashMap<String, SlugMap, FastHasher> = HashMap::default();
        for deployment in by_id.values() {
            let deployments = by_slug
                .entry(deployment.org_slug.to_ascii_lowercase())
                .or_default();
            let slug = deployment.slug.to_ascii_lowercase();
            match deployments.get(&slug) {
                Some(existing) if existing.id > deployment.id => {
                    warn_duplicate(existing, deployment);
                }
                Some(existing) => {
                    warn_duplicate(deployment, existing);
                    deployments.insert(slug, deployment.clone());
                }
                None => {
                    deployments.insert(slug, deployment.clone());
                }
            }
        }

        Snapshot {
            version,
            by_id,
            by_slug,
            single: None,
            plugins: HashMap::new(),
        }
    }

    /// Sets the plugin chains of the table's deployments.
    pub fn with_plugins(mut self, plugins: HashMap<Uuid, Arc<PluginChain>>) -> Self {
        self.plugins = plugins;
        self
    }

    /// Returns the plugin chain of a deployment, if it lists plugins.
    pub fn plugin_chain(&self, id: &Uuid) -> Option<&Arc<PluginChain>> {
        self.plugins.get(id)
    }

    /// Returns every plugin chain, by deployment id.
    pub fn plugin_chains(&self) -> &HashMap<Uuid, Arc<PluginChain>> {
        &self.plugins
    }

    /// Builds a table for single-document mode: `mock` responds to every request.
    pub fn single(mock: Mock) -> Self {
        Snapshot {
            single: Some(Arc::new(mock)),
            ..Snapshot::default()
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Returns the mock of single-document mode, if this is such a table.
    pub fn single_mock(&self) -> Option<&Mock> {
        self.single.as_deref()
    }

    /// Number of served deployments (0 in single-document mode).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: &Uuid) -> Option<&Arc<ServedDeployment>> {
        self.by_id.get(id)
    }

    /// Iterates over served deployments in no particular order.
    pub fn deployments(&self) -> impl Iterator<Item = &Arc<ServedDeployment>> {
        self.by_id.values()
    }

    /// Looks a deployment up by organization and deployment slug, ignoring ASCII case.
    pub fn lookup(&self, org: &str, deployment: &str) -> Lookup<'_> {
        let Some(deployments) = self.by_slug.get(lowercase(org).as_ref()) else {
            return Lookup::UnknownOrg;
        };
        match deployments.get(lowercase(deployment).as_ref()) {
            Some(served) => Lookup::Found(served),
            None => Lookup::UnknownDeployment,
        }
    }

    /// Returns true when at least one deployment of the organization is served.
    pub fn has_org(&self, org: &str) -> bool {
        self.by_slug.contains_key(lowercase(org).as_ref())
    }
}

/// Lowercases ASCII letters, allocating only when there are uppercase ones.
fn lowercase(slug: &str) -> Cow<'_, str> {
    if slug.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(slug.to_ascii_lowercase())
    } else {
        Cow::Borrowed(slug)
    }
}

fn warn_duplicate(kept: &ServedDeployment, dropped: &ServedDeployment) {
    tracing::warn!(
        org = %kept.org_slug,
        deployment = %kept.slug,
        kept_id = %kept.id,
        dropped_id = %dropped.id,
        "two deployments share one URL; serving the one with the greater id"
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const DOCUMENT: &str =
        r#"{"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": {}}"#;

    /// Returns a deployment of an empty document, for tests.
    pub(crate) fn deployment(id: u128, org: &str, slug: &str) -> Arc<ServedDeployment> {
        let compiled =
            mockforge_engine::compile(DOCUMENT, mockforge_engine::MockOptions::default())
                .unwrap_or_else(|error| {
                    panic!("test document does not compile: {:?}", error.diagnostics)
                });
        Arc::new(ServedDeployment {
            id: Uuid::from_u128(id),
            org_id: Uuid::from_u128(1000),
            org_slug: org.to_owned(),
            slug: slug.to_owned(),
            plan: "free".to_owned(),
            document_sha256: String::new(),
            config: serde_json::Value::Null,
            mock: Arc::new(compiled.mock),
            limits: PlanLimits::default(),
            period_start: None,
            chaos: None,
            proxy: None,
        })
    }

    #[test]
    fn lookup_ignores_ascii_case() {
        let snapshot = Snapshot::new(3, [deployment(1, "Acme", "PetStore")]);
        assert_eq!(snapshot.version(), 3);
        assert_eq!(snapshot.len(), 1);
        assert!(matches!(
            snapshot.lookup("acme", "petstore"),
            Lookup::Found(_)
        ));
        assert!(matches!(
            snapshot.lookup("ACME", "PETSTORE"),
            Lookup::Found(_)
        ));
        assert!(snapshot.has_org("aCmE"));
    }

    #[test]
    fn lookup_distinguishes_unknown_org_and_deployment() {
        let snapshot = Snapshot::new(1, [deployment(1, "acme", "petstore")]);
        assert!(matches!(
            snapshot.lookup("globex", "petstore"),
            Lookup::UnknownOrg
        ));
        assert!(matches!(
            snapshot.lookup("acme", "orders"),
            Lookup::UnknownDeployment
        ));
    }

    #[test]
    fn duplicate_url_keeps_greater_id() {
        for order in [[1, 2], [2, 1]] {
            let snapshot = Snapshot::new(1, order.map(|id| deployment(id, "acme", "petstore")));
            match snapshot.lookup("acme", "petstore") {
                Lookup::Found(served) => {
                    assert_eq!(served.id, Uuid::from_u128(2), "order {order:?}")
                }
                other => panic!("expected a deployment, got {other:?}"),
            }
            assert_eq!(snapshot.len(), 2, "order {order:?}");
        }
    }

    #[test]
    fn single_mode_has_no_tenants() {
        let compiled =
            mockforge_engine::compile(DOCUMENT, mockforge_engine::MockOptions::default())
                .unwrap_or_else(|error| {
                    panic!("test document does not compile: {:?}", error.diagnostics)
                });
        let snapshot = Snapshot::single(compiled.mock);
        assert!(snapshot.single_mock().is_some());
        assert!(snapshot.is_empty());
        assert!(matches!(
            snapshot.lookup("acme", "petstore"),
            Lookup::UnknownOrg
        ));
    }
}
