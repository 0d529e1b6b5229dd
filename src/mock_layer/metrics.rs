//! The emulator's series (docs/operations.md). The handles live in [`MockLayer`] and its
//! worlds; [`EmulatorMetrics::register`] names them in the application's metrics registry.
//! Labels are fixed sets: the app (the apps served are fixed at start), never a user.
//!
//! Webhook deliveries are counted by attempt outcome: `delivered` (a 2xx), `failed` (an
//! attempt that will be retried or given up), `gave_up` (30 minutes of failures), `dropped`
//! (the queue was full).
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DeliveryLabels {
    pub outcome: &'static str,
}

/// Cheap to clone; clones share values.
#[derive(Clone, Default)]
pub struct EmulatorMetrics {
    /// WebSockets whose task is running.
    pub(crate) sockets_open: Gauge,
    /// Messages created, by app (Client API, WebSocket and Platform API alike).
    pub(crate) messages_created: Family<AppLabels, Counter>,
    /// Webhook delivery attempts, by outcome.
    pub(crate) webhook_deliveries: Family<DeliveryLabels, Counter>,
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
        metrics.register(
            "emulator_webhook_deliveries",
            "Layer emulator webhook delivery attempts, by outcome",
            self.webhook_deliveries.clone(),
        );
    }

    /// Counts one webhook delivery attempt (or drop) with `outcome`.
    pub(crate) fn webhook_delivery(&self, outcome: &'static str) {
        self.webhook_deliveries
            .get_or_create(&DeliveryLabels { outcome })
            .inc();
    }
}
