//! The Layer WebSocket (§C): handshake, per-connection counters, requests and responses,
//! the changes other requests push, typing signals, and closing.
//!
//! One task per socket owns the connection and its `counter`, which starts at 0 and goes up
//! by exactly one for *every* packet it sends — responses, changes, signals, operations —
//! because the XDK replays on any gap and the WebSDK treats a second 0 as a reset. Other
//! requests reach the socket through its bounded channel (see `world.rs`): the task
//! interleaves that channel with the frames it reads, so a request's response is written
//! before the changes it caused on the same socket, as the real service did.
//!
//! Bad input never costs anyone else anything: a frame that is not JSON or a packet of an
//! unknown type is ignored, a request that breaks a rule gets a failed response with Layer's
//! error, a binary frame or a frame over the size limit closes only this socket, with a
//! close code that says why.
//!
//! Nor does a bad client. Sockets are capped per session and per user (a socket past a cap
//! is closed at once, code 1008, with the reason). Every write is bounded: it races the
//! socket's kill switch and its session's expiry, and gives up after
//! `socket_send_timeout_ms`, so a client that stops reading cannot pin the task, and
//! logout, expiry and the test controls close its socket as promptly as any other. (The TCP
//! connection of a client that reads nothing at all may outlive the task until the kernel
//! gives up on it; it no longer holds anything of the emulator's.)

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::MockLayer;
use super::auth::{Caller, session_token_from_header};
use super::change_log::{ClientApi, Outbound};
use super::error::LayerError;
use super::ids::{Kind, parse_object_id, user_id_from_identity};
use super::input;
use super::world::{PresenceStatus, SocketEnd, SocketHandle};
use crate::clock::{iso_ms, parse_iso_ms};

/// Subprotocols: the WebSDK speaks `layer-2.0`, the XDK `layer-3.0`. The chosen one is echoed,
/// without which browsers and the npm `websocket` client refuse the connection.
const PROTOCOLS: [&str; 2] = ["layer-2.0", "layer-3.0"];

/// The request methods the emulator answers: all the journal ever records of a method.
const METHODS: [&str; 8] = [
    "Presence.subscribe",
    "Presence.update",
    "Presence.sync",
    "Counter.read",
    "Event.replay",
    "Conversation.create",
    "Message.create",
    "Channel.create",
];

/// What the journal records as the method of a request packet: a method the emulator
/// knows, else `(unknown)` — never the client's text, which may be a frame long.
fn journal_method(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("(unknown)")
}

/// Packets waiting for a socket; a socket this far behind is closed (see `World::send`).
const QUEUE_DEPTH: usize = 1024;

/// How long the close frame may take to go out; a client that does not read gets none.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /…?session_token=…` with `Upgrade: websocket`, on any path.
pub async fn get_websocket(
    req: HttpRequest,
    payload: web::Payload,
    emulator: web::Data<MockLayer>,
) -> Result<HttpResponse, LayerError> {
    let token = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "session_token")
        .map(|(_, v)| v.into_owned())
        .or_else(|| session_token_from_header(&req).map(str::to_owned));
    let session = token.as_deref().and_then(|t| emulator.sessions.find(t));
    let (Some(token), Some(session)) = (token, session) else {
        return Err(LayerError::authentication_required(
            "the WebSocket needs a live session_token; answer the challenge in data.nonce",
            emulator.sessions.issue_nonce(),
        ));
    };
    let caller = Caller {
        app: session.app,
        user_id: session.user_id,
    };
    req.extensions_mut().insert(caller.clone());
    let (response, ws, stream) = actix_ws::handle_with_protocols(&req, payload, &PROTOCOLS)
        .map_err(|e| LayerError::invalid_request(format!("not a WebSocket handshake: {e}")))?;
    // From here on the connection carries frames, not HTTP responses.
    crate::http_server::write_verbatim(&req);
    let max_frame = emulator.settings().max_frame_bytes;
    let stream = stream
        .max_frame_size(max_frame)
        .aggregate_continuations()
        .max_continuation_size(max_frame);
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let (kill, killed) = watch::channel(None);
    let id = emulator.next_socket_id();
    let api = ClientApi::from_protocol(
        response
            .headers()
            .get(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok()),
    );
    let span = tracing::info_span!("websocket", socket = id);
    let registered = emulator.world(caller.app)?.add_socket(
        &caller.user_id,
        SocketHandle {
            id,
            session: token,
            tx,
            api,
            kill,
        },
    );
    let opened_ms = match registered {
        Ok(opened_ms) => opened_ms,
        Err(too_many) => {
            // The handshake is answered, so the client learns why in the close frame
            // rather than retrying a refused upgrade blind.
            tracing::info!(parent: &span, reason = %too_many, "socket refused");
            actix_web::rt::spawn(async move {
                let reason = close(CloseCode::Policy, &too_many);
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(reason)).await;
            });
            return Ok(response);
        }
    };
    let lifetime_ms = u64::try_from(
        session
            .expires_ms
            .saturating_sub(emulator.sessions.now_ms(session.app)),
    )
    .unwrap_or(0);
    let connection = Connection {
        emulator: emulator.clone(),
        caller,
        id,
        api,
        counter: 0,
        last_ms: opened_ms,
        stop: Box::pin(stopped(
            killed,
            emulator.watch_going_away(),
            tokio::time::sleep(Duration::from_millis(lifetime_ms)),
        )),
        stamp: (0, String::new()),
        send_timeout: Duration::from_millis(emulator.settings().socket_send_timeout_ms),
    };
    actix_web::rt::spawn(tracing::Instrument::instrument(
        connection.run(ws, stream, rx),
        span,
    ));
    Ok(response)
}

struct Connection {
    emulator: web::Data<MockLayer>,
    caller: Caller,
    id: u64,
    /// The Client API its subprotocol chose.
    api: ClientApi,
    /// The counter of the next packet this socket sends.
    counter: u64,
    /// The `timestamp` of the last change this socket delivered (at first, when it opened).
    /// Responses carry it too: a response is written straight to the socket, possibly
    /// before changes already queued for it, and with a later time the client would replay
    /// from after those changes if the socket died before it got them. Changes reach the
    /// queue in the order of the world's clock, so from this time on nothing is missed.
    last_ms: i64,
    /// Resolves, with the reason, when the socket must close (see [`stopped`]). Made once
    /// per connection and polled by reference: building it afresh for every packet (two
    /// watch waits and their wakers' registration) cost more than the packet.
    stop: Stop,
    /// The last `timestamp` written, and its time (see [`Connection::stamp`]).
    stamp: (i64, String),
    /// How long one frame may wait for the client to make room for it.
    send_timeout: Duration,
}

/// What ends a socket from outside, as one future (see [`stopped`]).
type Stop = Pin<Box<dyn Future<Output = CloseReason> + Send>>;

/// Resolves when the socket must close, with the reason: the world killing it (logout,
/// session ended, a test control, a queue it let fill up), the process stopping, or its
/// session's expiry (`expiry`, made when the socket opened). Polled again after it resolved
/// it would panic; the connection stops at its first answer.
async fn stopped(
    mut killed: watch::Receiver<Option<SocketEnd>>,
    mut going_away: watch::Receiver<bool>,
    expiry: tokio::time::Sleep,
) -> CloseReason {
    tokio::select! {
        biased;
        // A dropped sender means the world forgot this socket: stop all the same.
        ended = killed.wait_for(Option::is_some) => match ended.ok().and_then(|e| *e) {
            Some(SocketEnd::Expired) => reason(CloseCode::Policy, "the session expired"),
            _ => reason(
                CloseCode::Normal,
                "the session ended, or this socket was closed by the emulator",
            ),
        },
        // Only a stopping process sets it; a dropped sender (the emulator gone) too.
        _ = going_away.wait_for(|away| *away) => reason(
            CloseCode::Away,
            "the emulator is shutting down",
        ),
        () = expiry => reason(CloseCode::Policy, "the session expired"),
    }
}

/// Why the socket is closing: `Some` with a reason for the close frame, `None` when the
/// connection is already gone.
type Close = Option<CloseReason>;

fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}

fn close(code: CloseCode, description: &str) -> Close {
    Some(reason(code, description))
}

impl Connection {
    async fn run(
        mut self,
        mut ws: actix_ws::Session,
        mut stream: AggregatedMessageStream,
        mut rx: mpsc::Receiver<Outbound>,
    ) {
        tracing::debug!(user = %self.caller.user_id, "socket open");
        let sockets_open = self.emulator.metrics.sockets_open.clone();
        sockets_open.inc();
        let reason: Close = loop {
            let step = tokio::select! {
                biased;
                reason = &mut self.stop => Err(Some(reason)),
                item = rx.recv() => match item {
                    Some(packet) => self.send_packet(&mut ws, &packet).await,
                    None => Err(None),
                },
                message = stream.recv() => match message {
                    Some(Ok(AggregatedMessage::Text(text))) => self.handle_text(&mut ws, &text).await,
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        let pong = ws.pong(&bytes);
                        self.bounded(pong).await
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        Err(close(CloseCode::Unsupported, "Layer packets are JSON text frames"))
                    }
                    Some(Ok(AggregatedMessage::Close(_))) | None => Err(close(CloseCode::Normal, "bye")),
                    Some(Err(ProtocolError::Overflow)) => {
                        let limit = self.emulator.settings().max_frame_bytes;
                        Err(close(CloseCode::Size, &format!("messages are at most {limit} bytes")))
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "WebSocket protocol error");
                        Err(close(CloseCode::Protocol, "WebSocket protocol error"))
                    }
                },
            };
            if let Err(reason) = step {
                break reason;
            }
        };
        // The world forgets the socket before the close frame goes out, so nothing more is
        // queued for it. The close frame gets a moment to go out; a client that stopped
        // reading does not get it, and the task ends regardless.
        if let Ok(mut world) = self.emulator.world(self.caller.app) {
            world.remove_socket(&self.caller.user_id, self.id);
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(reason)).await;
        sockets_open.dec();
        tracing::debug!("socket closed");
    }

    /// Waits for a write, but never forever: actix-ws holds 32 frames, so a client that stops
    /// reading would otherwise pin this task, deaf to its kill switch and its session's
    /// expiry. The write races both, and gives up after `send_timeout`.
    async fn bounded(
        &mut self,
        write: impl Future<Output = Result<(), actix_ws::Closed>>,
    ) -> Result<(), Close> {
        tokio::select! {
            biased;
            reason = &mut self.stop => Err(Some(reason)),
            written = tokio::time::timeout(self.send_timeout, write) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(actix_ws::Closed)) => Err(None),
                Err(_) => {
                    tracing::info!(timeout = ?self.send_timeout, "closing a WebSocket whose client stopped reading");
                    Err(close(CloseCode::Policy, "the client stopped reading"))
                }
            },
        }
    }

    /// A change, signal or operation, stamped with the time the world gave it.
    async fn send_packet(
        &mut self,
        ws: &mut actix_ws::Session,
        packet: &Outbound,
    ) -> Result<(), Close> {
        self.last_ms = self.last_ms.max(packet.at_ms);
        self.write(ws, packet.kind.as_str(), packet.at_ms, &packet.body)
            .await
    }

    async fn send_response(
        &mut self,
        ws: &mut actix_ws::Session,
        body: &Value,
    ) -> Result<(), Close> {
        let body = serde_json::to_string(body).unwrap_or_default();
        self.write(ws, "response", self.last_ms, &body).await
    }

    /// The envelope, members in the order Layer sent them, around a body that is JSON text
    /// already (serialised once by the world for every socket it goes to).
    async fn write(
        &mut self,
        ws: &mut actix_ws::Session,
        kind: &str,
        at_ms: i64,
        body: &str,
    ) -> Result<(), Close> {
        let text = envelope(kind, self.counter, self.stamp(at_ms), body);
        self.counter += 1;
        let write = ws.text(text);
        self.bounded(write).await
    }

    /// `at_ms` as the envelope's `timestamp`. A socket's packets come in bursts within one
    /// millisecond (a message's create and the conversation's update), so the last one
    /// formatted is kept rather than formatted again.
    fn stamp(&mut self, at_ms: i64) -> &str {
        if self.stamp.0 != at_ms || self.stamp.1.is_empty() {
            self.stamp = (at_ms, iso_ms(at_ms));
        }
        &self.stamp.1
    }

    async fn handle_text(&mut self, ws: &mut actix_ws::Session, text: &str) -> Result<(), Close> {
        match decode_frame(text) {
            Frame::Request(request) => self.handle_request(ws, request).await,
            Frame::Typing(Some((conversation, action))) => {
                self.relay_typing(&conversation, action);
                Ok(())
            }
            Frame::Typing(None) => {
                tracing::debug!("ignoring a malformed typing indicator");
                Ok(())
            }
            Frame::OtherSignal => Ok(()),
            Frame::NotAnObject => {
                tracing::debug!("ignoring a frame that is not a JSON object");
                Ok(())
            }
            Frame::UnknownType(packet_type) => {
                tracing::debug!(?packet_type, "ignoring a packet of an unknown type");
                Ok(())
            }
        }
    }

    async fn handle_request(
        &mut self,
        ws: &mut actix_ws::Session,
        request: Request,
    ) -> Result<(), Close> {
        let Request {
            method,
            request_id,
            object_id,
            data,
        } = request;
        let Some(request_id) = request_id else {
            tracing::debug!(
                method,
                "ignoring a request without a request_id: it cannot be answered"
            );
            return Ok(());
        };
        self.emulator
            .journal
            .record_packet(&self.caller, journal_method(&method));
        let result = match method.as_str() {
            "Presence.subscribe" => Ok(json!({})),
            "Presence.update" => self.presence_update(&data),
            "Presence.sync" => self.presence_sync(&data),
            // The counter of the last packet sent before this response.
            "Counter.read" => Ok(json!({ "counter": self.counter.checked_sub(1) })),
            "Event.replay" => match self.replay_changes(ws, &data).await {
                Ok(result) => result,
                Err(closed) => return Err(closed),
            },
            "Conversation.create" => self.create_conversation(&data),
            "Message.create" => self.create_message(object_id.as_ref(), &data),
            "Channel.create" => self.create_channel(&data),
            "" => Err(LayerError::invalid_request("the request has no method")),
            other => Err(LayerError::invalid_request(format!(
                "{other:?} is not a method this emulator implements ({})",
                METHODS.join(", ")
            ))),
        };
        let response = match result {
            Ok(data) => {
                json!({"request_id": request_id, "method": method, "success": true, "data": data})
            }
            Err(error) => {
                json!({"request_id": request_id, "method": method, "success": false, "data": error.body()})
            }
        };
        self.send_response(ws, &response).await
    }

    fn presence_update(&self, data: &Value) -> Result<Value, LayerError> {
        let status = presence_status(data)?;
        if let Some(status) = status {
            self.emulator
                .world(self.caller.app)?
                .set_presence(&self.caller.user_id, status)?;
        }
        Ok(json!({}))
    }

    /// `{"ids": [...]}` → the presence of each; `{"since": …}` → the presence of every
    /// followed identity whose presence changed since then; neither → every followed one.
    /// `changes` is always an array: the SDK iterates it unconditionally and stalls its
    /// queue otherwise.
    fn presence_sync(&self, data: &Value) -> Result<Value, LayerError> {
        let Some(ids) = data.get("ids") else {
            let since_ms = match data.get("since") {
                None | Some(Value::Null) => i64::MIN,
                Some(since) => since.as_str().and_then(parse_iso_ms).ok_or_else(|| {
                    LayerError::invalid_property("since", "since must be an ISO 8601 time")
                })?,
            };
            let world = self.emulator.world(self.caller.app)?;
            return Ok(json!({ "changes": world.presence_since(&self.caller.user_id, since_ms) }));
        };
        let ids = ids.as_array().ok_or_else(|| {
            LayerError::invalid_property("ids", "ids must be an array of identity IDs")
        })?;
        let world = self.emulator.world(self.caller.app)?;
        let changes: Vec<Value> = ids
            .iter()
            .filter_map(|id| id.as_str().and_then(user_id_from_identity))
            .filter(|user| world.identities.contains_key(user))
            .map(|user| world.presence_change(&user))
            .collect();
        Ok(json!({ "changes": changes }))
    }

    /// Re-sends, as `change`/`operation` packets with new counters and their original
    /// timestamps, everything logged for this user since `from_timestamp`; the response
    /// follows them. If the log no longer reaches back that far the replay fails rather than
    /// answer with part of the history: the SDK then goes on with the live socket, and the
    /// app reloads what it shows with queries.
    async fn replay_changes(
        &mut self,
        ws: &mut actix_ws::Session,
        data: &Value,
    ) -> Result<Result<Value, LayerError>, Close> {
        let Some(from_ms) = data
            .get("from_timestamp")
            .and_then(Value::as_str)
            .and_then(parse_iso_ms)
        else {
            return Ok(Err(LayerError::invalid_property(
                "from_timestamp",
                "Event.replay needs from_timestamp, an ISO 8601 time",
            )));
        };
        let missed = match self.emulator.world(self.caller.app) {
            Ok(world) => world.replay(&self.caller.user_id, from_ms),
            Err(e) => return Ok(Err(e)),
        };
        let missed = match missed {
            Ok(missed) => missed,
            Err(incomplete) => {
                return Ok(Err(LayerError::invalid_property(
                    "from_timestamp",
                    format!(
                        "changes from {} are no longer all kept for you (the emulator keeps \
                         mock_layer.replay_entries_per_user / replay_bytes_per_user per user); \
                         replays from after {} are complete. Reload with queries instead.",
                        iso_ms(from_ms),
                        iso_ms(incomplete.dropped_through_ms)
                    ),
                )));
            }
        };
        let api = self.api;
        for packet in missed.iter().filter(|p| p.min_api <= api) {
            self.send_packet(ws, packet).await?;
        }
        Ok(Ok(json!({})))
    }

    fn create_conversation(&self, data: &Value) -> Result<Value, LayerError> {
        let new = input::new_conversation(data, self.emulator.settings().max_participants)?;
        let (view, _) = self
            .emulator
            .world(self.caller.app)?
            .create_conversation(&self.caller.user_id, new)?;
        Ok(view)
    }

    fn create_channel(&self, data: &Value) -> Result<Value, LayerError> {
        let new = input::new_channel(data, self.emulator.settings().max_channel_members)?;
        self.emulator
            .world(self.caller.app)?
            .create_channel(&self.caller.user_id, new)
    }

    /// `object_id` names a conversation, or a channel (a channel message).
    fn create_message(&self, object_id: Option<&Value>, data: &Value) -> Result<Value, LayerError> {
        let target = object_id.and_then(Value::as_str);
        if let Some(channel) = target.and_then(|id| {
            id.starts_with("layer:///channels/")
                .then(|| parse_object_id(Kind::Channels, id))
                .flatten()
        }) {
            let new = input::new_message(data)?;
            return self.emulator.world(self.caller.app)?.send_channel_message(
                &self.caller.user_id,
                &channel,
                new,
            );
        }
        let conversation = target
            .and_then(|id| parse_object_id(Kind::Conversations, id))
            .ok_or_else(|| {
                LayerError::invalid_property(
                    "object_id",
                    "Message.create needs object_id, the conversation's or the channel's ID",
                )
            })?;
        let new = input::new_message(data)?;
        self.emulator.world(self.caller.app)?.create_message(
            &self.caller.user_id,
            &conversation,
            new,
        )
    }

    /// Relays a typing indicator to the other participants.
    fn relay_typing(&self, conversation: &Uuid, action: &str) {
        let result = self
            .emulator
            .world(self.caller.app)
            .and_then(|mut world| world.relay_typing(&self.caller.user_id, conversation, action));
        if let Err(e) = result {
            tracing::debug!(error = ?e, "typing indicator not relayed");
        }
    }
}

/// `{"type":…,"counter":…,"timestamp":…,"body":…}`, members in the order Layer sent them,
/// written into one allocation of the exact size: every packet of the fan-out goes through
/// here, and growing the text as it is written cost a `realloc` and a copy of the body.
fn envelope(kind: &str, counter: u64, timestamp: &str, body: &str) -> String {
    use std::fmt::Write as _;
    const PARTS: [&str; 4] = [
        r#"{"type":""#,
        r#"","counter":"#,
        r#","timestamp":""#,
        r#"","body":"#,
    ];
    let counter_digits = counter.checked_ilog10().map_or(1, |d| d as usize + 1);
    let len = PARTS.iter().map(|p| p.len()).sum::<usize>()
        + kind.len()
        + counter_digits
        + timestamp.len()
        + body.len()
        + 1;
    let mut text = String::with_capacity(len);
    text.push_str(PARTS[0]);
    text.push_str(kind);
    text.push_str(PARTS[1]);
    // Writing a number into a `String` cannot fail.
    let _ = write!(text, "{counter}");
    text.push_str(PARTS[2]);
    text.push_str(timestamp);
    text.push_str(PARTS[3]);
    text.push_str(body);
    text.push('}');
    debug_assert_eq!(text.len(), len);
    text
}

/// A text frame, decoded: what the socket does with it. Public, with [`decode_frame`] and
/// [`presence_status`], for the fuzzers.
#[derive(Debug)]
pub enum Frame {
    /// Not a JSON object: ignored.
    NotAnObject,
    /// A packet whose `type` is neither `request` nor `signal`: ignored.
    UnknownType(Option<String>),
    Request(Request),
    /// A typing indicator: its conversation and action, or `None` when it names no
    /// conversation or no known action (then it is ignored).
    Typing(Option<(Uuid, &'static str)>),
    /// Any other signal: ignored (signals have no response to carry an error).
    OtherSignal,
}

/// A `request` packet's body.
#[derive(Debug)]
pub struct Request {
    /// Empty when absent or not a string.
    pub method: String,
    /// `None` when absent or neither a string nor a number: the request cannot be answered.
    pub request_id: Option<Value>,
    pub object_id: Option<Value>,
    /// `null` when absent.
    pub data: Value,
}

pub fn decode_frame(text: &str) -> Frame {
    let Ok(Value::Object(mut packet)) = serde_json::from_str::<Value>(text) else {
        return Frame::NotAnObject;
    };
    let body = packet.remove("body").unwrap_or(Value::Null);
    match packet.get("type").and_then(Value::as_str) {
        Some("request") => Frame::Request(Request {
            method: body
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            request_id: body
                .get("request_id")
                .filter(|id| id.is_string() || id.is_number())
                .cloned(),
            object_id: body.get("object_id").cloned(),
            data: body.get("data").cloned().unwrap_or(Value::Null),
        }),
        Some("signal") => {
            if body.get("type").and_then(Value::as_str) != Some("typing_indicator") {
                return Frame::OtherSignal;
            }
            let conversation = body
                .pointer("/object/id")
                .and_then(Value::as_str)
                .and_then(|id| parse_object_id(Kind::Conversations, id));
            let action = match body.pointer("/data/action").and_then(Value::as_str) {
                Some("started") => Some("started"),
                Some("paused") => Some("paused"),
                Some("finished") => Some("finished"),
                _ => None,
            };
            Frame::Typing(conversation.zip(action))
        }
        other => Frame::UnknownType(other.map(str::to_owned)),
    }
}

/// `Presence.update`'s data: `[{"operation": "set", "property": "status", "value": …}]`; the
/// last status set, or `None` for an empty list.
pub fn presence_status(data: &Value) -> Result<Option<PresenceStatus>, LayerError> {
    let invalid = || {
        LayerError::invalid_property(
            "status",
            "Presence.update takes [{\"operation\": \"set\", \"property\": \"status\", \"value\": \
             \"auto|available|away|busy|offline|invisible\"}]",
        )
    };
    let ops = data.as_array().ok_or_else(invalid)?;
    let mut status = None;
    for op in ops {
        if op.get("operation").and_then(Value::as_str) != Some("set")
            || op.get("property").and_then(Value::as_str) != Some("status")
        {
            return Err(invalid());
        }
        status = Some(
            op.get("value")
                .and_then(Value::as_str)
                .and_then(PresenceStatus::parse)
                .ok_or_else(invalid)?,
        );
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_exactly_the_members_in_layers_order() {
        for counter in [0, 9, 10, 99, 100, 12_345, u64::MAX] {
            let text = envelope("change", counter, "2026-01-02T03:04:05.678Z", r#"{"a":1}"#);
            assert_eq!(
                text,
                format!(
                    r#"{{"type":"change","counter":{counter},"timestamp":"2026-01-02T03:04:05.678Z","body":{{"a":1}}}}"#
                )
            );
            assert_eq!(
                text.capacity(),
                text.len(),
                "one allocation of the exact size"
            );
        }
    }
}
