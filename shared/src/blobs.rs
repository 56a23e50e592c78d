//! S3 adapter: raw webhook bodies, transcripts and call audio. The bucket encrypts at rest and
//! blocks public access (template.yaml); objects are only ever read through this adapter or a
//! short-lived presigned URL.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use crate::error::DependencyError;
use crate::ids::{ConversationId, TenantId};

#[derive(Clone, Debug)]
pub struct Blobs {
    client: Client,
    bucket: String,
}

/// Object keys, in one place. Prefixes match the bucket's lifecycle rules.
pub mod keys {
    use super::*;

    pub fn raw_webhook(t: &TenantId, c: &ConversationId, event_type: &str) -> String {
        format!("raw/{t}/{c}/{event_type}.json")
    }

    pub fn transcript(t: &TenantId, c: &ConversationId) -> String {
        format!("transcripts/{t}/{c}.json")
    }

    pub fn audio(t: &TenantId, c: &ConversationId) -> String {
        format!("audio/{t}/{c}.mp3")
    }
}

impl Blobs {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), DependencyError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| DependencyError::aws("s3", "PutObject", &e))?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, DependencyError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(DependencyError::aws("s3", "GetObject", &e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| DependencyError::new("s3", "GetObject", "Read", e.to_string()))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }
}

impl Blobs {
    /// A URL that reads one object for `valid_for` (the QA console's audio player), signed with
    /// the function's own credentials; nothing else about the bucket is exposed.
    pub async fn presigned_get(
        &self,
        key: &str,
        valid_for: std::time::Duration,
    ) -> Result<String, DependencyError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(valid_for)
            .map_err(|e| DependencyError::new("s3", "GetObject", "Presign", e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| DependencyError::aws("s3", "GetObject", &e))?;
        Ok(request.uri().to_string())
    }
}
