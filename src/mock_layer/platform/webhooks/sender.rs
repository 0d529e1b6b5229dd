//! Sending: verification challenges, deliveries, retries, and the delivery log behind
//! `GET /_mock/webhooks`.
//!
//! One task per emulator. Worlds record events (`world/webhooks.rs`) and wake it; it renders
//! each event for each webhook that subscribed, under the world's lock, and sends outside it,
//! at most [`IN_FLIGHT`] at a time, each bounded by `mock_layer.webhook_timeout_ms`. So the
//! request that caused an event never waits for a receiver, and a receiver that hangs holds
//! at most its share of the in-flight sends for a timeout each. Deliveries waiting to be sent
//! are bounded by `mock_layer.webhook_queue_size`; past it a delivery is dropped and logged as
//! `dropped`.
//!
//! A failure (no answer in time, or an answer that is not 2xx) is retried with the same
//! `layer-webhook-request-id`, after 1 s, 2 s, 4 s … (at most 5 min apart), on the app's
//! clock — so `POST /_mock/clock` moves retries along too. Once a delivery has failed for
//! 30 minutes the webhook becomes `inactive` and its waiting deliveries are given up.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::payloads::{Rendered, render};
use crate::clock::iso_ms;
use crate::mock_layer::ids::AppId;
use crate::mock_layer::world::webhooks::{WebhookStatus, WebhookVersion};
use crate::mock_layer::{MockLayer, lock};

/// Deliveries sent at once.
const IN_FLIGHT: usize = 8;
/// How long a failing delivery is retried before its webhook is made inactive (Layer: about
/// half an hour).
pub const RETRY_WINDOW_MS: i64 = 30 * 60 * 1000;
const FIRST_RETRY_MS: i64 = 1000;
const MAX_RETRY_GAP_MS: i64 = 5 * 60 * 1000;
/// Deliveries `GET /_mock/webhooks` remembers (the oldest finished ones go first).
const LOG_SIZE: usize = 1000;
/// How often retries are looked at in real time.
const TICK: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt.
    Pending,
    /// Failed at least once; another attempt is due at `next_attempt_at`.
    Retrying,
    Delivered,
    /// Gave up: the retry window passed (the webhook is inactive), or the webhook was
    /// deactivated or deleted meanwhile.
    Failed,
    /// Never sent: the queue was full.
    Dropped,
}

/// One delivery as `GET /_mock/webhooks` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    #[serde(serialize_with = "as_string")]
    pub request_id: Uuid,
    pub app_id: String,
    #[serde(serialize_with = "as_string")]
    pub webhook_id: Uuid,
    #[serde(serialize_with = "as_string")]
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub target_url: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The status of the last answer, if there was one.
    pub response_code: Option<u16>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
}

fn as_string<S: serde::Serializer>(uuid: &Uuid, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(uuid)
}

/// A delivery on its way.
struct Job {
    app: AppId,
    webhook: Uuid,
    version: WebhookVersion,
    request_id: Uuid,
    target_url: String,
    rendered: Rendered,
    attempts: u32,
    first_ms: i64,
    due_ms: i64,
}

/// The emulator's webhook sender: its log, its wake-up, its HTTP client.
pub struct Sender {
    notify: Arc<Notify>,
    log: Mutex<VecDeque<DeliveryRecord>>,
    client: reqwest::Client,
    queue_size: usize,
}

impl Sender {
    pub fn new(timeout: Duration, queue_size: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            notify: Arc::new(Notify::new()),
            log: Mutex::new(VecDeque::new()),
            client,
            queue_size,
        })
    }

    /// What worlds wake the sender with.
    pub fn notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// The deliveries remembered, oldest first; of one app with `only`.
    pub fn deliveries(&self, only: Option<AppId>) -> Vec<DeliveryRecord> {
        let only = only.map(|app| app.to_string());
        lock(&self.log)
            .iter()
            .filter(|r| only.as_ref().is_none_or(|app| *app == r.app_id))
            .cloned()
            .collect()
    }

    pub fn clear_log(&self, only: Option<AppId>) {
        let only = only.map(|app| app.to_string());
        lock(&self.log).retain(|r| only.as_ref().is_some_and(|app| *app != r.app_id));
    }

    /// `GET <target_url>?verification_challenge=<random>`: whether it echoed the challenge,
    /// or why not (the webhook's `status_reason`).
    pub async fn verify(&self, target_url: &str) -> Result<(), String> {
        let challenge = crate::mock_layer::ids::random_token(24);
        let mut url = url::Url::parse(target_url)
            .map_err(|_| "Verification failed: the target_url is not a URL".to_owned())?;
        url.query_pairs_mut()
            .append_pair("verification_challenge", &challenge);
        let response = self
            .client
            .get(url)
            .header("user-agent", "layer-webhooks/1.0")
            .send()
            .await
            .map_err(|e| {
                format!(
                    "Verification failed: the request failed ({})",
                    error_kind(&e)
                )
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "Verification failed due to unexpected response status: {status}"
            ));
        }
        let body = response.bytes().await.map_err(|e| {
            format!(
                "Verification failed: the answer could not be read ({})",
                error_kind(&e)
            )
        })?;
        if body.as_ref() != challenge.as_bytes() {
            return Err(
                "Verification failed: the answer's body was not the verification_challenge"
                    .to_owned(),
            );
        }
        Ok(())
    }

    fn record(&self, record: DeliveryRecord) {
        let mut log = lock(&self.log);
        if log.len() >= LOG_SIZE {
            // The oldest finished delivery goes; if none has finished, the oldest.
            let finished = log.iter().position(|r| {
                !matches!(r.status, DeliveryStatus::Pending | DeliveryStatus::Retrying)
            });
            log.remove(finished.unwrap_or(0));
        }
        log.push_back(record);
    }

    fn update(&self, request_id: Uuid, change: impl FnOnce(&mut DeliveryRecord)) {
        if let Some(record) = lock(&self.log)
            .iter_mut()
            .rev()
            .find(|r| r.request_id == request_id)
        {
            change(record);
        }
    }
}

fn error_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "no answer within mock_layer.webhook_timeout_ms"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    }
}

fn retry_gap_ms(attempts: u32) -> i64 {
    FIRST_RETRY_MS
        .saturating_mul(1 << attempts.saturating_sub(1).min(20))
        .min(MAX_RETRY_GAP_MS)
}

/// Starts the sender for as long as the emulator exists.
pub fn start(emulator: &Arc<MockLayer>) {
    let weak = Arc::downgrade(emulator);
    let notify = emulator.webhook_sender().notify();
    tokio::spawn(async move {
        let mut waiting: VecDeque<Job> = VecDeque::new();
        let mut retrying: Vec<Job> = Vec::new();
        let mut in_flight: JoinSet<(Job, Result<u16, String>)> = JoinSet::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let finished = tokio::select! {
                () = notify.notified() => None,
                _ = tick.tick() => None,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => done.ok(),
            };
            let Some(emulator) = weak.upgrade() else {
                return;
            };
            if let Some((job, outcome)) = finished {
                settle(&emulator, job, outcome, &mut retrying);
            }
            collect(&emulator, &mut waiting);
            due_retries(&emulator, &mut retrying, &mut waiting);
            while in_flight.len() < IN_FLIGHT {
                let Some(job) = waiting.pop_front() else {
                    break;
                };
                let client = emulator.webhook_sender().client.clone();
                in_flight.spawn(async move {
                    let outcome = send(&client, &job).await;
                    (job, outcome)
                });
            }
            drop(emulator);
        }
    });
}

/// Takes the events every world recorded, renders them for their webhooks, and queues them.
fn collect(emulator: &MockLayer, waiting: &mut VecDeque<Job>) {
    let sender = emulator.webhook_sender();
    for (app, mut world) in emulator.worlds() {
        let events: Vec<_> = world.webhooks.pending.drain(..).collect();
        for event in events {
            for hook_uuid in &event.webhooks {
                let Some(hook) = world.webhooks.hooks.get(hook_uuid) else {
                    continue;
                };
                if hook.status != WebhookStatus::Active {
                    continue;
                }
                let Some(rendered) = render(&world, hook, &event) else {
                    continue;
                };
                let now = world.peek_ms();
                let job = Job {
                    app,
                    webhook: hook.uuid,
                    version: hook.version,
                    request_id: Uuid::new_v4(),
                    target_url: hook.target_url.clone(),
                    rendered,
                    attempts: 0,
                    first_ms: now,
                    due_ms: now,
                };
                let dropped = waiting.len() >= sender.queue_size;
                sender.record(DeliveryRecord {
                    request_id: job.request_id,
                    app_id: app.to_string(),
                    webhook_id: hook.uuid,
                    event_id: event.id,
                    event_type: job.rendered.event_type,
                    target_url: job.target_url.clone(),
                    status: if dropped {
                        DeliveryStatus::Dropped
                    } else {
                        DeliveryStatus::Pending
                    },
                    attempts: 0,
                    response_code: None,
                    error: dropped.then(|| {
                        "the delivery queue was full (mock_layer.webhook_queue_size)".to_owned()
                    }),
                    created_at: iso_ms(now),
                    next_attempt_at: None,
                });
                if dropped {
                    emulator.metrics.webhook_delivery("dropped");
                } else {
                    waiting.push_back(job);
                }
            }
        }
    }
}

/// Moves retries whose time has come (on their app's clock) to the queue.
fn due_retries(emulator: &MockLayer, retrying: &mut Vec<Job>, waiting: &mut VecDeque<Job>) {
    if retrying.is_empty() {
        return;
    }
    let mut kept = Vec::with_capacity(retrying.len());
    for job in retrying.drain(..) {
        let (now, active) = match emulator.world(job.app) {
            Ok(world) => (
                world.peek_ms(),
                world
                    .webhooks
                    .hooks
                    .get(&job.webhook)
                    .is_some_and(|h| h.status == WebhookStatus::Active),
            ),
            Err(_) => (i64::MAX, false),
        };
        if !active {
            emulator.webhook_sender().update(job.request_id, |r| {
                r.status = DeliveryStatus::Failed;
                r.next_attempt_at = None;
                r.error = Some("the webhook is no longer active".to_owned());
            });
        } else if job.due_ms <= now {
            waiting.push_back(job);
        } else {
            kept.push(job);
        }
    }
    *retrying = kept;
}

async fn send(client: &reqwest::Client, job: &Job) -> Result<u16, String> {
    let response = client
        .post(&job.target_url)
        .header("layer-webhook-event-type", job.rendered.event_type)
        .header("layer-webhook-signature", &job.rendered.signature)
        .header("layer-webhook-request-id", job.request_id.to_string())
        .header("layer-webhook-id", job.webhook.to_string())
        .header(
            "user-agent",
            format!("layer-webhooks/{}", job.version.as_str()),
        )
        .header(
            "content-type",
            format!(
                "application/vnd.layer.webhooks+json; version={}",
                job.version.as_str()
            ),
        )
        .body(job.rendered.body.clone())
        .send()
        .await
        .map_err(|e| error_kind(&e).to_owned())?;
    Ok(response.status().as_u16())
}

/// Records how an attempt went; schedules a retry, or gives up and makes the webhook inactive.
fn settle(
    emulator: &MockLayer,
    mut job: Job,
    outcome: Result<u16, String>,
    retrying: &mut Vec<Job>,
) {
    let sender = emulator.webhook_sender();
    job.attempts += 1;
    let (code, error) = match outcome {
        Ok(code) if (200..300).contains(&code) => {
            emulator.metrics.webhook_delivery("delivered");
            sender.update(job.request_id, |r| {
                r.status = DeliveryStatus::Delivered;
                r.attempts = job.attempts;
                r.response_code = Some(code);
                r.error = None;
                r.next_attempt_at = None;
            });
            return;
        }
        Ok(code) => (Some(code), format!("the answer was {code}, not 2xx")),
        Err(error) => (None, error),
    };
    emulator.metrics.webhook_delivery("failed");
    let Ok(mut world) = emulator.world(job.app) else {
        return;
    };
    let now = world.peek_ms();
    if now.saturating_sub(job.first_ms) >= RETRY_WINDOW_MS {
        emulator.metrics.webhook_delivery("gave_up");
        if let Some(hook) = world.webhooks.hooks.get_mut(&job.webhook) {
            hook.status = WebhookStatus::Inactive;
            hook.status_reason = Some(format!(
                "Deliveries failed for 30 minutes; the last one: {error}"
            ));
        }
        sender.update(job.request_id, |r| {
            r.status = DeliveryStatus::Failed;
            r.attempts = job.attempts;
            r.response_code = code;
            r.error = Some(error);
            r.next_attempt_at = None;
        });
        return;
    }
    job.due_ms = now.saturating_add(retry_gap_ms(job.attempts));
    let next = iso_ms(job.due_ms);
    sender.update(job.request_id, |r| {
        r.status = DeliveryStatus::Retrying;
        r.attempts = job.attempts;
        r.response_code = code;
        r.error = Some(error);
        r.next_attempt_at = Some(next);
    });
    retrying.push(job);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_five_minutes() {
        let gaps: Vec<i64> = (1..=12).map(retry_gap_ms).collect();
        assert_eq!(&gaps[..4], &[1000, 2000, 4000, 8000]);
        assert_eq!(gaps[11], MAX_RETRY_GAP_MS);
        assert!(gaps.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(retry_gap_ms(u32::MAX), MAX_RETRY_GAP_MS);
    }
}
