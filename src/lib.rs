//! httphooks: database changes turned into reliable HTTP callbacks.
//!
//! Layers, with dependencies pointing down only:
//! - `cli` and `commands`: the command line, one module per command;
//! - `engine`: a `send_callbacks` run (claims, the per-endpoint scheduler, recording);
//! - `delivery` (HTTP, auth, signing, retry policy) and `payload` (templates,
//!   encodings), which know nothing of databases;
//! - `storage`: httphooks' tables, the queue operations and the SQL of each backend,
//!   with [`storage::backend::Backend`] at its bottom.
//!
//! The binary uses [`Cli`], [`run`] and [`init_logging`]; the storage conformance suite
//! (`tests/storage_conformance.rs`) uses [`storage`]'s queue operations, as the engine
//! does. Nothing else is public.

mod cli;
mod commands;
mod delivery;
mod engine;
mod error;
mod logging;
mod payload;
pub mod storage;

pub use cli::{usage_error, Cli};
pub use commands::run;
pub use error::{Error, Result};
pub use logging::init as init_logging;
pub use storage::enqueue::{enqueue, Enqueue};

/// The version sent in the User-Agent header and shown by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
