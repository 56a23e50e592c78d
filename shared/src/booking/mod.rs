//! Bookings: the availability engine (pure), the rules of a business around it, and the
//! calendar the booking tools read (the engine over the stored bookings).

pub mod calendar;
pub mod engine;
pub mod rules;

#[cfg(test)]
mod properties;
