//! chatgate: a Socket.IO-compatible real-time chat gateway.
//!
//! # Layout
//!
//! The crate is layered bottom-up; each concern has one home, and every
//! module imports only from the ones listed before it.
//!
//! - [`error`]: the one error type and its stable, client-visible codes.
//! - [`clock`]: the wall clock (`now_ms`), read by the domain and the backends alike.
//! - [`metrics`]: the name of every metric and the Prometheus recorder, without HTTP, so every
//!   layer may record metrics.
//! - [`config`]: every setting (CLI flag, env var, optional TOML file), validated once at startup.
//! - [`auth`]: handshake identity: JWT (HS256/RS256/ES256) or dev-mode `userId`.
//! - [`protocol`]: event names and payload shapes of the wire contract, the only place they are spelled.
//! - [`cluster`]: the cross-node adapter of the engine (Redis pub/sub): rooms and packets, no chat.
//! - [`backend`]: the storage traits the domain needs and their in-memory and Redis implementations.
//! - [`domain`]: engine-agnostic chat logic (channels, membership, presence, rate limits), testable
//!   without sockets; it returns outcomes and delivers nothing.
//! - [`delivery`]: where a domain outcome becomes room joins and emits (member joined/left,
//!   messages, typing, presence), for every caller below.
//! - [`gateway`]: the Socket.IO handlers, one function per client event, on chatgate's own
//!   engine (`chatgate-engine`, in `engine/`).
//! - [`api`]: the other HTTP surfaces: the server API for app backends (`/api/v1`), the demo
//!   chat page (`/`), and for operators `/metrics` (Prometheus) and `/status`.
//! - [`server`]: the HTTP app (engine, health checks) and its run loop with graceful shutdown.

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
