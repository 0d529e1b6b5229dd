//! The Layer emulator over real HTTP and WebSocket connections, on port 0.
//!
//! Identity tokens are minted here only to test the emulator's *validation* in isolation
//! (bad algorithms, wrong keys, mix-ups); the Node end-to-end suite drives real logins.

mod auth;
mod bad_input;
mod channels;
mod control;
mod control_access;
mod export;
mod helpers;
mod platform;
mod platform_details;
mod responses;
mod rest;
mod startup;
mod webhooks;
mod websocket;
