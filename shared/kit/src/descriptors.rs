//! Ferry's gRPC methods as the encoded descriptor sets describe them: what the metrics
//! label calls by and the audit log reads a request's resource names with.

use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorSet};

/// One method of a service in a descriptor set.
pub(crate) struct Method<'a> {
    /// `/package.Service/Method`, the gRPC path.
    pub path: String,
    /// `package.Service`.
    pub service: String,
    pub name: &'a str,
    /// The request message's full name, `.package.Message`.
    pub input_type: &'a str,
}

/// The set encoded in `bytes` (`None`, logged, when it does not decode).
pub(crate) fn decode(bytes: &[u8]) -> Option<FileDescriptorSet> {
    FileDescriptorSet::decode(bytes).map_err(|e| tracing::error!(error = %e, "a descriptor set does not decode")).ok()
}

/// Every method of every service in `set`.
pub(crate) fn methods(set: &FileDescriptorSet) -> impl Iterator<Item = Method<'_>> {
    set.file.iter().flat_map(|file| {
        file.service.iter().flat_map(move |service| {
            let full = format!("{}.{}", file.package(), service.name());
            service.method.iter().map(move |m| Method {
                path: format!("/{full}/{}", m.name()),
                service: full.clone(),
                name: m.name(),
                input_type: m.input_type(),
            })
        })
    })
}

/// Every top-level message in `set`, by its full name (`.package.Message`).
pub(crate) fn messages(set: &FileDescriptorSet) -> impl Iterator<Item = (String, &DescriptorProto)> {
    set.file.iter().flat_map(|file| file.message_type.iter().map(move |m| (format!(".{}.{}", file.package(), m.name()), m)))
}
