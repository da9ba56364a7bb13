//! The RPCs under test, read from Ferry's encoded file descriptor set: every method of
//! every service in a `ferry.*` package. No hand list, so a new RPC is fuzzed the day it
//! is added to a `.proto`.

use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};

/// One RPC: its HTTP/2 path, its message types and its streaming shape.
#[derive(Debug, Clone)]
pub struct Method {
    /// `/ferry.registry.v1.RegistryService/GetGroup`.
    pub path: String,
    /// `ferry.registry.v1.RegistryService`.
    pub service: String,
    /// `RegistryService/GetGroup`, for tables.
    pub short: String,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

impl Method {
    fn new(m: &MethodDescriptor) -> Self {
        let service = m.parent_service();
        Self {
            path: format!("/{}/{}", service.full_name(), m.name()),
            service: service.full_name().to_owned(),
            short: format!("{}/{}", service.name(), m.name()),
            input: m.input(),
            output: m.output(),
            client_streaming: m.is_client_streaming(),
            server_streaming: m.is_server_streaming(),
        }
    }
}

/// Ferry's descriptor pool (with the google.protobuf types it imports).
pub fn pool() -> Result<DescriptorPool, crate::Error> {
    Ok(DescriptorPool::decode(ferry_proto::FILE_DESCRIPTOR_SET)?)
}

/// The full names of the services in `ferry.*` packages, in descriptor order.
pub fn services(pool: &DescriptorPool) -> Vec<String> {
    pool.services().filter(|s| is_ferry(s.package_name())).map(|s| s.full_name().to_owned()).collect()
}

/// Every method of every service in a `ferry.*` package, in descriptor order.
pub fn methods(pool: &DescriptorPool) -> Vec<Method> {
    pool.services().filter(|s| is_ferry(s.package_name())).flat_map(|s| s.methods().map(|m| Method::new(&m)).collect::<Vec<_>>()).collect()
}

fn is_ferry(package: &str) -> bool {
    package == "ferry" || package.starts_with("ferry.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ferry_service_and_only_those() {
        let pool = pool().expect("descriptor set decodes"); // ok: test
        let services = services(&pool);
        for s in [
            "ferry.registry.v1.RegistryService",
            "ferry.merge.v1.MergeService",
            "ferry.integration.v1.IntegrationService",
            "ferry.refresh.v1.RefreshService",
        ] {
            assert!(services.iter().any(|x| x == s), "{s} missing from {services:?}");
        }
        let methods = methods(&pool);
        assert!(methods.iter().all(|m| m.path.starts_with("/ferry.")));
        let import = methods.iter().find(|m| m.short == "RegistryService/ImportEntities").expect("ImportEntities"); // ok: test
        assert!(import.client_streaming && !import.server_streaming);
        let watch = methods.iter().find(|m| m.short == "MergeService/WatchJob").expect("WatchJob"); // ok: test
        assert!(watch.server_streaming && !watch.client_streaming);
    }
}
