//! The resource names of a request, for its audit event: the values of its top-level
//! string fields whose names say they hold resource names (`name`, `parent`, `source`,
//! …), read from the encoded request with the field numbers of Ferry's descriptor set.
//! Only those fields are read, so a key, token or credential field can never reach an
//! event.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use prost_types::field_descriptor_proto::Type;

/// The request fields that hold resource names (AIP resource names or references).
const RESOURCE_FIELDS: [&str; 20] = [
    "name",
    "parent",
    "source",
    "destination",
    "environment",
    "group",
    "groups",
    "job",
    "mapping",
    "mappings",
    "integrations",
    "sync_jobs",
    "merge_plans",
    "group_merge_plans",
    "recipient",
    "refresh_run",
    "restore_point",
    "project",
    "source_project",
    "target_project",
];

/// At most this many names, each at most this long, per event.
const MAX_NAMES: usize = 32;
const MAX_NAME_CHARS: usize = 256;

/// For each full method (`/package.Service/Method`), the field numbers of its request's
/// resource-name fields.
fn fields() -> &'static HashMap<String, Vec<u32>> {
    static FIELDS: OnceLock<HashMap<String, Vec<u32>>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let Some(set) = crate::descriptors::decode(ferry_proto::FILE_DESCRIPTOR_SET) else { return HashMap::new() };
        let messages: HashMap<String, Vec<u32>> = crate::descriptors::messages(&set)
            .map(|(name, m)| {
                let numbers = m
                    .field
                    .iter()
                    .filter(|f| f.r#type() == Type::String && RESOURCE_FIELDS.contains(&f.name()))
                    .map(|f| f.number() as u32)
                    .collect();
                (name, numbers)
            })
            .collect();
        crate::descriptors::methods(&set)
            .map(|m| {
                let numbers = messages.get(m.input_type).cloned().unwrap_or_default();
                (m.path, numbers)
            })
            .collect()
    })
}

/// The resource names in `encoded`, the request of `method`, in field order.
pub(super) fn of(method: &str, encoded: &[u8]) -> Vec<String> {
    let Some(numbers) = fields().get(method).filter(|n| !n.is_empty()) else { return Vec::new() };
    let mut names = Vec::new();
    let mut buf = encoded;
    while buf.has_remaining() && names.len() < MAX_NAMES {
        let Ok((tag, wire_type)) = decode_key(&mut buf) else { break };
        if wire_type == WireType::LengthDelimited && numbers.contains(&tag) {
            let Ok(len) = decode_varint(&mut buf) else { break };
            let Some(len) = usize::try_from(len).ok().filter(|l| *l <= buf.remaining()) else { break };
            let value = String::from_utf8_lossy(&buf[..len]);
            if !value.is_empty() {
                names.push(crate::status::clip(&value, MAX_NAME_CHARS));
            }
            buf.advance(len);
        } else if skip_field(wire_type, tag, &mut buf, DecodeContext::default()).is_err() {
            break;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::integration::v1 as pb;
    use prost::Message;

    #[test]
    fn resource_fields_only_never_a_key() {
        let request = pb::RotateCredentialsRequest {
            name: "environments/prod/integrations/rally".into(),
            api_key: "sk-secret-never-logged".into(),
            request_id: "r-1".into(),
        };
        let names = of("/ferry.integration.v1.IntegrationService/RotateCredentials", &request.encode_to_vec());
        assert_eq!(names, vec!["environments/prod/integrations/rally".to_string()]);
        assert!(of("/ferry.integration.v1.IntegrationService/Nope", &request.encode_to_vec()).is_empty());
        let copy = pb::CopyIntegrationsRequest {
            source: "environments/prod".into(),
            destination: "environments/dev".into(),
            ..Default::default()
        };
        assert_eq!(
            of("/ferry.integration.v1.IntegrationService/CopyIntegrations", &copy.encode_to_vec()),
            ["environments/prod", "environments/dev"]
        );
    }
}
