//! Cross-service tests: the real services started in-process on `127.0.0.1:0` over one
//! store, reached through real gRPC clients. One binary, one module per concern.

mod contracts;
mod evaluation;
mod experiment;
mod harness;
mod health;
mod limits;
mod prepare;
mod quickstart;
mod real_data;
mod resume;
mod segment;
mod shutdown;
mod slice_context;
mod telemetry;
mod training;
