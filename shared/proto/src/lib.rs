//! Ferry's gRPC contracts, generated from `proto/` at build time (tonic-prost-build with a
//! vendored protoc), and the encoded file descriptor set that gRPC reflection serves.
//!
//! API boundary: these types stop at each service's `grpc` module.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Every Ferry package, encoded as one `FileDescriptorSet`, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ferry_descriptor.bin"));

pub mod audit {
    pub mod v1 {
        tonic::include_proto!("ferry.audit.v1");
    }
}
pub mod common {
    pub mod v1 {
        tonic::include_proto!("ferry.common.v1");
    }
}
pub mod registry {
    pub mod v1 {
        tonic::include_proto!("ferry.registry.v1");
    }
}
pub mod merge {
    pub mod v1 {
        tonic::include_proto!("ferry.merge.v1");
    }
}
pub mod integration {
    pub mod v1 {
        tonic::include_proto!("ferry.integration.v1");
    }
}
pub mod refresh {
    pub mod v1 {
        tonic::include_proto!("ferry.refresh.v1");
    }
}

/// Debug for the requests that carry an API key: every field but the key, which shows
/// only whether one was given.
mod redacted {
    use super::integration::v1::{CreateIntegrationRequest, RotateCredentialsRequest, WebhookSubscription};

    fn key(k: &str) -> &'static str {
        if k.is_empty() { "" } else { "***" }
    }

    impl std::fmt::Debug for CreateIntegrationRequest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("CreateIntegrationRequest")
                .field("parent", &self.parent)
                .field("integration_id", &self.integration_id)
                .field("integration", &self.integration)
                .field("api_key", &key(&self.api_key))
                .field("request_id", &self.request_id)
                .finish()
        }
    }

    impl std::fmt::Debug for RotateCredentialsRequest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RotateCredentialsRequest")
                .field("name", &self.name)
                .field("api_key", &key(&self.api_key))
                .field("request_id", &self.request_id)
                .finish()
        }
    }

    impl std::fmt::Debug for WebhookSubscription {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("WebhookSubscription")
                .field("name", &self.name)
                .field("url", &self.url)
                .field("event_types", &self.event_types)
                .field("environments", &self.environments)
                .field("state", &self.state)
                .field("disabled_reason", &self.disabled_reason)
                .field("consecutive_failures", &self.consecutive_failures)
                .field("secret", &key(&self.secret))
                .field("secret_fingerprint", &self.secret_fingerprint)
                .field("created_by", &self.created_by)
                .field("create_time", &self.create_time)
                .field("update_time", &self.update_time)
                .finish()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn api_keys_never_debug_print() {
            let r = CreateIntegrationRequest { api_key: "s3cret".into(), ..Default::default() };
            assert!(!format!("{r:?}").contains("s3cret"));
            let r = RotateCredentialsRequest { api_key: "s3cret".into(), ..Default::default() };
            assert!(!format!("{r:?}").contains("s3cret"));
            let w = WebhookSubscription { secret: "s3cret".into(), ..Default::default() };
            assert!(!format!("{w:?}").contains("s3cret"));
        }
    }
}
