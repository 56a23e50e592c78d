//! The text channel (Twilio SMS and WhatsApp, and the website's enquiry form). The pure parts
//! say what an inbound message is ([`inbound`], [`keywords`], [`segments`]); the use cases act
//! on it ([`texts`]: an inbound text; [`conversation`]: the receptionist's answer through the
//! LLM; [`status`]: delivery callbacks; [`web_form`]: a website enquiry).

pub mod conversation;
pub mod inbound;
pub mod keywords;
pub mod segments;
pub mod status;
pub mod texts;
pub mod web_form;
