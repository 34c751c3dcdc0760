//! abdoseg segments the liver, kidneys, spleen and pancreas in abdominal CT.
//!
//! This crate is the `abdoseg` command and the [`stack`] that composes the four gRPC
//! services (preprocessing, training, inference, metrics) into one server.

pub mod cli;
pub mod experiment;
pub mod stack;
