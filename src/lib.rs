//! chatgate: a Socket.IO-compatible real-time chat gateway.
//!
//! # Layout
//!
//! The crate is layered bottom-up; each concern has one home.
//!
//! - [`error`]: the one error type and its stable, client-visible codes.
//! - [`clock`]: the wall clock (`now_ms`), read by the domain and the backends alike.
//! - [`config`]: every setting (CLI flag, env var, optional TOML file), validated once at startup.
//! - [`auth`]: handshake identity: JWT (HS256/RS256/ES256) or dev-mode `userId`.
//! - [`protocol`]: event names and payload shapes of the wire contract, the only place they are spelled.
//! - [`domain`]: engine-agnostic chat logic (channels, membership, presence, rate limits), testable without sockets.
//! - [`backend`]: the storage traits the domain needs and their implementations (in-memory today).
//! - [`gateway`]: the Socket.IO handlers that connect clients to the domain, on chatgate's own
//!   engine (`chatgate-engine`, in `engine/`).
//! - [`server`]: the HTTP app (engine, health checks) and its run loop with graceful shutdown.
//! - [`api`]: the other HTTP surfaces: the server API for app backends (`/api/v1`), the demo
//!   chat page (`/`), and for operators `/metrics` (Prometheus) and `/status`.
//! - [`metrics`]: the name of every metric and the recorder, without HTTP, so every layer may
//!   record metrics.

pub mod api;
pub mod auth;
pub mod backend;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod metrics;
pub mod protocol;
pub mod server;
