//! ElevenLabs Agents Platform: webhook signatures, webhook payloads and the REST API client.

pub mod client;
pub mod signature;
pub mod webhook;
