//! Bookings: the availability engine (pure) and, around it, the rules of a business.

pub mod engine;
pub mod rules;

#[cfg(test)]
mod properties;
