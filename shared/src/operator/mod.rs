//! The operator's side (feature `operator`, the `frontdesk` binary): a tenant folder checked
//! whole, rendered into the ElevenLabs agent's configuration, gated by its scenarios, pushed
//! to ElevenLabs, synced to the stack's table; and calls back-filled from the API.

pub mod api;
pub mod cli;
pub mod folder;
pub mod gate;
pub mod push;
pub mod stack;
