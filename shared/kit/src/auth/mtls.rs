//! Client certificates as identities under mutual TLS. The TLS handshake has already
//! checked the chain against `--tls-client-ca-file`; here the leaf certificate's URI SANs
//! (a SPIFFE id such as `spiffe://cluster.local/ns/ferry/sa/refresh-coordinator`) and DNS
//! SANs are looked up in the identities file, `<san> <role>[+approver][+service]
//! <*|env,env>` per line. The SAN that matched is the subject.

use std::collections::HashMap;

use rustls_pki_types::CertificateDer;
use tonic::Status;
use x509_parser::extensions::GeneralName;

use super::watch::entries;
use super::{Credential, Principal, TableFile, Watched, role_and_scope, valid_subject};

/// The identities file a server goes by now, read again when it changes.
pub type ClientIdentities = Watched<IdentityTable>;

/// Client certificate SANs and who they are.
#[derive(Debug, Clone, Default)]
pub struct IdentityTable {
    by_san: HashMap<String, Principal>,
}

impl TableFile for IdentityTable {
    const WHAT: &'static str = "client identities file";
    fn parse(text: &str) -> Result<Self, String> {
        IdentityTable::parse(text)
    }
    fn entries(&self) -> usize {
        self.by_san.len()
    }
}

impl IdentityTable {
    /// Parses `<san> <role>[+approver][+service] <*|env,env>` lines, `#` comments.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut by_san = HashMap::new();
        for (n, parts) in entries(text) {
            let [san, grant, scope] = parts.as_slice() else {
                return Err(format!("line {n}: expected `<san> <role> <scope>` (found {} fields)", parts.len()));
            };
            if !valid_subject(san) {
                return Err(format!("line {n}: SAN longer than 256 characters"));
            }
            let (role, grant, environments) = role_and_scope(grant, scope).map_err(|e| format!("line {n}: {e}"))?;
            let principal = Principal {
                subject: (*san).to_owned(),
                credential: Credential::ClientCertificate,
                role,
                approver: grant.approver,
                service: grant.service,
                environments,
                on_behalf_of: None,
            };
            if by_san.insert((*san).to_owned(), principal).is_some() {
                return Err(format!("line {n}: SAN {san} is listed twice"));
            }
        }
        Ok(Self { by_san })
    }

    /// The identity of the client that presented `chain` (leaf first): its first URI or
    /// DNS SAN in the table. UNAUTHENTICATED naming the SANs seen when none is.
    pub fn identify(&self, chain: &[CertificateDer<'_>]) -> Result<Principal, Status> {
        let leaf = chain.first().ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let sans = sans(leaf).map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        sans.iter().find_map(|san| self.by_san.get(san).cloned()).ok_or_else(|| {
            let seen = if sans.is_empty() { "none".to_owned() } else { sans.join(", ") };
            Status::unauthenticated(format!(
                "no bearer token, and no SAN of the client certificate is in the client identities file (SANs: {seen})"
            ))
        })
    }
}

/// The URI SANs, then the DNS SANs, of a DER certificate.
pub fn sans(der: &[u8]) -> Result<Vec<String>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
    let Some(ext) = cert.subject_alternative_name().map_err(|e| format!("bad subjectAltName: {e}"))? else {
        return Ok(Vec::new());
    };
    let names = &ext.value.general_names;
    let uris = names.iter().filter_map(|n| if let GeneralName::URI(u) = n { Some((*u).to_owned()) } else { None });
    let dns = names.iter().filter_map(|n| if let GeneralName::DNSName(d) = n { Some((*d).to_owned()) } else { None });
    Ok(uris.chain(dns).collect())
}

#[cfg(test)]
mod tests {
    use super::super::Role;
    use super::*;

    fn cert(sans: Vec<rcgen::SanType>) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = sans;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn a_spiffe_uri_san_or_a_dns_san_maps_to_its_identity() {
        let table = IdentityTable::parse(
            "# the coordinator\nspiffe://cluster.local/ns/ferry/sa/refresh-coordinator admin+service *\nci.example.com operator dev,uat\n",
        )
        .unwrap();
        let spiffe = "spiffe://cluster.local/ns/ferry/sa/refresh-coordinator";
        let uri = rcgen::SanType::URI(rcgen::string::Ia5String::try_from(spiffe).unwrap());
        let coordinator = table.identify(&[cert(vec![rcgen::SanType::DnsName("other.example.com".try_into().unwrap()), uri])]).unwrap();
        assert_eq!((coordinator.subject.as_str(), coordinator.credential), (spiffe, Credential::ClientCertificate));
        assert_eq!((coordinator.role, coordinator.service, coordinator.environments), (Role::Admin, true, None));
        let ci = table.identify(&[cert(vec![rcgen::SanType::DnsName("ci.example.com".try_into().unwrap())])]).unwrap();
        assert_eq!((ci.role, ci.service), (Role::Operator, false));
        assert!(ci.check_environment("prod").is_err());

        let stranger = table.identify(&[cert(vec![rcgen::SanType::DnsName("stranger.example.com".try_into().unwrap())])]).unwrap_err();
        assert_eq!(stranger.code(), tonic::Code::Unauthenticated);
        assert!(stranger.message().contains("(SANs: stranger.example.com)"), "{}", stranger.message());
        assert!(table.identify(&[cert(vec![])]).unwrap_err().message().contains("(SANs: none)"));
    }

    #[test]
    fn bad_lines_are_refused_naming_them() {
        let err = |text: &str| IdentityTable::parse(text).unwrap_err();
        assert!(err("spiffe://x admin").starts_with("line 1: expected `<san> <role> <scope>`"));
        assert!(err("a.example.com admin *\na.example.com viewer *").starts_with("line 2: SAN a.example.com is listed twice"));
        assert!(err("a.example.com +approver *").contains("no role"));
        assert!(err("a.example.com admin+root *").contains("unknown right"));
    }
}
