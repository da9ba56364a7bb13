//! Ferry's gRPC contracts, generated from `proto/` at build time (tonic-prost-build with a
//! vendored protoc), and the encoded file descriptor set that gRPC reflection serves.
//!
//! API boundary: these types stop at each service's `grpc` module.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Every Ferry package, encoded as one `FileDescriptorSet`, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ferry_descriptor.bin"));

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
