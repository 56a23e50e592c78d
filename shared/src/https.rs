//! The one TLS stack: rustls on ring, for the AWS SDK and for every HTTP client we build.
//!
//! The SDK and reqwest both default to aws-lc, a large C library: ring makes each function's
//! artefact smaller and a clean build shorter (BENCHMARKS.md). Every client is built here so
//! none can pick another provider, or none at all: reqwest without a provider panics when a
//! client is built.

use std::sync::Once;

use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The SDK's configuration loader with the ring HTTPS client, for every `SdkConfig` we load.
pub fn aws_config() -> ConfigLoader {
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(client)
}

/// A reqwest builder whose TLS runs on ring (installed as the process's rustls provider).
pub fn client_builder() -> reqwest::ClientBuilder {
    static RING: Once = Once::new();
    RING.call_once(|| {
        // Err only when a provider is already installed, which is then the one used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_is_built_on_the_ring_provider() {
        let client = client_builder().build();
        assert!(client.is_ok(), "{:?}", client.err());
        let installed = rustls::crypto::CryptoProvider::get_default().expect("a provider");
        let ring = rustls::crypto::ring::default_provider();
        let suites = |p: &rustls::crypto::CryptoProvider| {
            p.cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect::<Vec<_>>()
        };
        assert_eq!(suites(installed), suites(&ring));
    }
}
