//! Frontdesk: the domain, the adapters around AWS, Twilio and ElevenLabs, and the handlers that
//! every Lambda function (and the local server) runs.
//!
//! Layers, from the inside out:
//! - domain types and rules that know nothing of I/O: [`phone`], [`ids`], [`tenant`], [`clock`],
//!   [`elevenlabs::signature`], [`elevenlabs::webhook`];
//! - adapters over the SDKs and HTTP APIs: [`store`] (DynamoDB), [`blobs`] (S3), [`queue`] (SQS),
//!   [`bus`] (EventBridge), [`twilio`], [`elevenlabs::client`], [`secrets`];
//! - use cases that combine them: [`post_call`], [`tools`], [`leads`], [`outbox`],
//!   [`events`], [`retry_worker`];
//! - entry points that only translate: [`http`] (the route table and the one place requests
//!   become responses). ARCHITECTURE.md draws the whole picture.

pub mod agent;
pub mod blobs;
pub mod booking;
pub mod bus;
pub mod clock;
pub mod config;
pub mod deps;
pub mod digest;
pub mod dispatch;
pub mod elevenlabs;
pub mod error;
pub mod events;
pub mod http;
pub mod https;
pub mod ids;
pub mod jobs;
pub mod leads;
pub mod llm;
pub mod messaging;
pub mod metrics;
pub mod outbox;
pub mod phone;
pub mod post_call;
pub mod qa;
pub mod quality;
pub mod queue;
pub mod quiet;
pub mod quotes;
pub mod reconcile;
pub mod redact;
pub mod retry_worker;
pub mod schedules;
pub mod secrets;
pub mod sequences;
pub mod spoken;
pub mod store;
pub mod telemetry;
pub mod tenant;
pub mod tools;
pub mod twilio;

#[cfg(feature = "local")]
pub mod local;

#[cfg(feature = "operator")]
pub mod operator;
