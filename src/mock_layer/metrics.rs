//! The emulator's series (docs/operations.md). The handles live in [`MockLayer`] and its
//! worlds; [`EmulatorMetrics::register`] names them in the application's metrics registry.
//! Labels are fixed sets: the app (the apps served are fixed at start), never a user.
//!
//! Webhook deliveries: the emulator does not deliver webhooks yet. When it does, their
//! counter belongs here, beside the others — `layer_idp_emulator_webhook_deliveries_total`
//! with an `outcome` label (delivered, failed, gave_up) — recorded by the delivery task.
//!
//! [`MockLayer`]: super::MockLayer

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AppLabels {
    pub app: String,
}

/// Cheap to clone; clones share values.
#[derive(Clone, Default)]
pub struct EmulatorMetrics {
    /// WebSockets whose task is running.
    pub(crate) sockets_open: Gauge,
    /// Messages created, by app (Client API, WebSocket and Platform API alike).
    pub(crate) messages_created: Family<AppLabels, Counter>,
}

impl EmulatorMetrics {
    pub fn register(&self, metrics: &Metrics) {
        metrics.register(
            "emulator_sockets_open",
            "Layer emulator WebSockets open",
            self.sockets_open.clone(),
        );
        metrics.register(
            "emulator_messages_created",
            "Messages the Layer emulator created, by app",
            self.messages_created.clone(),
        );
    }
}
