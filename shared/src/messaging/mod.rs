//! The text channel (Twilio SMS and WhatsApp): what an inbound text means before anything
//! answers it. Pure; the webhook handlers build on it.

pub mod keywords;
