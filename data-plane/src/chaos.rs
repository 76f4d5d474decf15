//! Chaos testing per deployment at request time. The `config_json.chaos` setting is parsed and
//! checked by [`mockforge_snapshot::settings`], which the control plane also uses. This module
//! draws the delay and outcome of each request.

use std::ops::Deref;
use std::time::Duration;

use http::StatusCode;
use rand::Rng;

pub use mockforge_snapshot::settings::{ChaosSettings, FaultKind, Latency};

/// A deployment's chaos settings, with the per-request draw. It dereferences to the parsed
/// [`ChaosSettings`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosConfig {
    settings: ChaosSettings,
}

/// Effect of chaos on one request: an optional delay, then the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosPlan {
    pub delay: Option<Duration>,
    pub outcome: ChaosOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosOutcome {
    /// Respond normally.
    Pass,
    /// Respond with this status in the error format.
    Error(StatusCode),
    /// Close the connection without a response.
    Fault(FaultKind),
}

impl ChaosConfig {
    /// Wraps settings whose `operations` list is resolved against the deployment's mock.
    pub fn new(settings: ChaosSettings) -> ChaosConfig {
        ChaosConfig { settings }
    }

    /// Draws what happens to one request.
    pub fn plan(&self, rng: &mut impl Rng) -> ChaosPlan {
        let delay = self.latency.as_ref().map(|latency| sample(latency, rng));
        let outcome = match self.fault {
            Some((kind, rate)) if rng.gen_bool(rate) => ChaosOutcome::Fault(kind),
            _ if self.error_rate > 0.0 && rng.gen_bool(self.error_rate) => {
                let index = rng.gen_range(0..self.error_statuses.len());
                ChaosOutcome::Error(self.error_statuses[index])
            }
            _ => ChaosOutcome::Pass,
        };
        ChaosPlan { delay, outcome }
    }
}

impl Deref for ChaosConfig {
    type Target = ChaosSettings;

    fn deref(&self) -> &ChaosSettings {
        &self.settings
    }
}

/// Draws one delay from `latency`.
fn sample(latency: &Latency, rng: &mut impl Rng) -> Duration {
    match *latency {
        Latency::Fixed(duration) => duration,
        Latency::Uniform { min, max } => rng.gen_range(min..=max),
        Latency::Normal { min, max } => {
            let (min_s, max_s) = (min.as_secs_f64(), max.as_secs_f64());
            let mean = (min_s + max_s) / 2.0;
            let std_dev = (max_s - min_s) / 6.0;
            // Box-Muller transform of two uniform samples.
            let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
            let u2: f64 = rng.gen();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            Duration::from_secs_f64((mean + z * std_dev).clamp(min_s, max_s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_chaos(chaos: serde_json::Value) -> Result<Option<ChaosConfig>, String> {
        let config = json!({ "chaos": chaos });
        Ok(ChaosSettings::from_config(&config)?.map(ChaosConfig::new))
    }

    #[test]
    fn plan_follows_rates() {
        let mut rng = rand::thread_rng();
        let always_error = parse_chaos(json!({"error_rate": 1.0, "error_statuses": [503]}))
            .unwrap()
            .unwrap();
        for _ in 0..100 {
            assert_eq!(
                always_error.plan(&mut rng).outcome,
                ChaosOutcome::Error(StatusCode::SERVICE_UNAVAILABLE)
            );
        }
        let always_fault = parse_chaos(json!({"fault": {"kind": "empty_response"}}))
            .unwrap()
            .unwrap();
        assert_eq!(
            always_fault.plan(&mut rng).outcome,
            ChaosOutcome::Fault(FaultKind::EmptyResponse)
        );
    }

    #[test]
    fn sampled_latency_stays_in_range() {
        let mut rng = rand::thread_rng();
        let (min, max) = (Duration::from_millis(10), Duration::from_millis(20));
        for latency in [Latency::Uniform { min, max }, Latency::Normal { min, max }] {
            for _ in 0..1000 {
                let delay = sample(&latency, &mut rng);
                assert!(delay >= min, "{latency:?} gave {delay:?}");
                assert!(delay <= max, "{latency:?} gave {delay:?}");
            }
        }
    }
}
