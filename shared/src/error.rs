//! Errors shared by the adapters. Each use case has its own error enum on top of these, and HTTP
//! status codes are chosen in one place ([`crate::http`]).

use aws_sdk_dynamodb::error::ProvideErrorMetadata;

/// A dependency (AWS, Twilio, ElevenLabs) failed or answered something unusable. Always worth
/// retrying later; never shown to callers.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {operation} failed: {code}: {message}")]
pub struct DependencyError {
    pub service: &'static str,
    pub operation: &'static str,
    pub code: String,
    pub message: String,
}

impl DependencyError {
    pub fn new(
        service: &'static str,
        operation: &'static str,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            service,
            operation,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// From any AWS SDK error: keeps the service's error code and message, not the request.
    pub fn aws<E>(service: &'static str, operation: &'static str, err: &E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error,
    {
        let code = err.code().unwrap_or("Unknown");
        let message = match err.message() {
            Some(m) => m.to_string(),
            // Transport failures carry no service metadata; their source chain says what broke.
            None => source_chain(err),
        };
        Self::new(service, operation, code, message)
    }
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
