//! httphooks: database changes turned into reliable HTTP callbacks.
//!
//! Layers, with dependencies pointing one way: `commands` use `storage` (schema, queue
//! operations, trigger SQL per backend), `delivery` (HTTP, retry policy, headers) and
//! `payload` (templates, encodings); those three never use `commands`.

pub mod cli;
pub mod commands;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod logging;
pub mod payload;
pub mod storage;

pub use error::{Error, Result};
pub use storage::enqueue::{enqueue, Enqueue};

/// The version sent in the User-Agent header and shown by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
