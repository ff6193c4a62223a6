//! `tls-server-end-point` channel binding (RFC 5929 §4.1), for
//! SCRAM-SHA-256-PLUS: a hash of the server's certificate, with the hash of
//! the certificate's own signature algorithm.
//!
//! The algorithm is found by a small DER walk rather than a full X.509
//! parser: only the outer structure is read,
//!
//! ```text
//! Certificate ::= SEQUENCE {
//!     tbsCertificate      SEQUENCE,
//!     signatureAlgorithm  AlgorithmIdentifier ::= SEQUENCE { OID, parameters },
//!     signature           BIT STRING }
//! ```

use ring::digest::{self, Algorithm};

/// The `tls-server-end-point` value of a DER certificate, or `None` when
/// its signature algorithm names no hash we can use (Ed25519, SHA-224,
/// unknown algorithms, malformed DER). `None` makes a
/// `channel_binding=require` connection fail rather than bind to a wrong
/// value; PostgreSQL's server cannot compute one for these either.
pub(super) fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    let algorithm = end_point_hash(cert_der)?;
    Some(digest::digest(algorithm, cert_der).as_ref().to_vec())
}

// The DER contents of the signature algorithm OIDs (RFC 3279, 4055, 5758).
const MD5_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
const SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const ECDSA_WITH_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const ECDSA_WITH_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const ECDSA_WITH_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
// The hash OIDs, as RSASSA-PSS parameters name them.
const HASH_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const HASH_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const HASH_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const HASH_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

const SEQUENCE: u8 = 0x30;
const OBJECT_IDENTIFIER: u8 = 0x06;
const CONTEXT_0: u8 = 0xa0;

/// The hash RFC 5929 picks for a certificate: its signature's hash, with
/// MD5 and SHA-1 upgraded to SHA-256.
fn end_point_hash(cert_der: &[u8]) -> Option<&'static Algorithm> {
    let (certificate, _) = expect(SEQUENCE, cert_der)?;
    let (_tbs_certificate, rest) = expect(SEQUENCE, certificate)?;
    let (signature_algorithm, _) = expect(SEQUENCE, rest)?;
    let (oid, parameters) = expect(OBJECT_IDENTIFIER, signature_algorithm)?;
    match oid {
        MD5_WITH_RSA | SHA1_WITH_RSA | SHA256_WITH_RSA | ECDSA_WITH_SHA1 | ECDSA_WITH_SHA256 => {
            Some(&digest::SHA256)
        }
        SHA384_WITH_RSA | ECDSA_WITH_SHA384 => Some(&digest::SHA384),
        SHA512_WITH_RSA | ECDSA_WITH_SHA512 => Some(&digest::SHA512),
        RSA_PSS => pss_hash(parameters),
        _ => None,
    }
}

/// The hash of RSASSA-PSS parameters (RFC 4055):
/// `SEQUENCE { hashAlgorithm [0] EXPLICIT AlgorithmIdentifier DEFAULT
/// sha1, ... }`. Parsed rather than assumed because PostgreSQL (with
/// OpenSSL's `X509_get_signature_info`) hashes with the named one.
fn pss_hash(parameters: &[u8]) -> Option<&'static Algorithm> {
    let (pss, _) = expect(SEQUENCE, parameters)?;
    let hash_oid = match expect(CONTEXT_0, pss) {
        // Absent: the default, SHA-1.
        None => HASH_SHA1,
        Some((explicit, _)) => {
            let (hash_algorithm, _) = expect(SEQUENCE, explicit)?;
            expect(OBJECT_IDENTIFIER, hash_algorithm)?.0
        }
    };
    match hash_oid {
        HASH_SHA1 | HASH_SHA256 => Some(&digest::SHA256),
        HASH_SHA384 => Some(&digest::SHA384),
        HASH_SHA512 => Some(&digest::SHA512),
        _ => None,
    }
}

/// The contents of the DER element at the start of `input` if its tag is
/// `tag`, and what follows it. Single-byte tags and definite lengths of up
/// to four bytes: all a certificate's outer structure uses.
fn expect(tag: u8, input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        // 0x80 is BER's indefinite length, which DER forbids.
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let length = bytes
            .iter()
            .fold(0_usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, rest)
    };
    if rest.len() < length {
        return None;
    }
    Some(rest.split_at(length))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use rcgen::{
        CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
    };

    use super::*;

    fn certificate(algorithm: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = KeyPair::generate_for(algorithm).unwrap();
        let params = CertificateParams::new(vec!["db.example".to_owned()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn hash(algorithm: &'static Algorithm, der: &[u8]) -> Vec<u8> {
        digest::digest(algorithm, der).as_ref().to_vec()
    }

    #[test]
    fn ecdsa_p256_sha256_hashes_with_sha256() {
        let der = certificate(&PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            tls_server_end_point(&der),
            Some(hash(&digest::SHA256, &der))
        );
    }

    #[test]
    fn ecdsa_p384_sha384_hashes_with_sha384() {
        let der = certificate(&PKCS_ECDSA_P384_SHA384);
        let value = tls_server_end_point(&der).unwrap();
        assert_eq!(value.len(), 48);
        assert_eq!(value, hash(&digest::SHA384, &der));
    }

    #[test]
    fn ed25519_has_no_end_point_hash() {
        assert_eq!(tls_server_end_point(&certificate(&PKCS_ED25519)), None);
    }

    /// A certificate reduced to its outer structure, with `algorithm` (an
    /// `AlgorithmIdentifier`'s contents) as its signature algorithm.
    fn skeleton(algorithm: &[u8]) -> Vec<u8> {
        let mut body = vec![SEQUENCE, 0x00];
        body.push(SEQUENCE);
        body.push(u8::try_from(algorithm.len()).unwrap());
        body.extend_from_slice(algorithm);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut der = vec![SEQUENCE, 0x81, u8::try_from(body.len()).unwrap()];
        der.extend_from_slice(&body);
        der
    }

    fn oid(content: &[u8]) -> Vec<u8> {
        let mut der = vec![OBJECT_IDENTIFIER, u8::try_from(content.len()).unwrap()];
        der.extend_from_slice(content);
        der
    }

    fn pss(parameters: &[u8]) -> Vec<u8> {
        let mut algorithm = oid(RSA_PSS);
        algorithm.push(SEQUENCE);
        algorithm.push(u8::try_from(parameters.len()).unwrap());
        algorithm.extend_from_slice(parameters);
        algorithm
    }

    #[test]
    fn rsa_hashes_follow_rfc_5929() {
        for (algorithm, expected) in [
            (MD5_WITH_RSA, &digest::SHA256),
            (SHA1_WITH_RSA, &digest::SHA256),
            (SHA256_WITH_RSA, &digest::SHA256),
            (SHA384_WITH_RSA, &digest::SHA384),
            (SHA512_WITH_RSA, &digest::SHA512),
            (ECDSA_WITH_SHA1, &digest::SHA256),
            (ECDSA_WITH_SHA512, &digest::SHA512),
        ] {
            let mut identifier = oid(algorithm);
            identifier.extend_from_slice(&[0x05, 0x00]); // NULL parameters
            let der = skeleton(&identifier);
            assert_eq!(
                tls_server_end_point(&der),
                Some(hash(expected, &der)),
                "{algorithm:x?}"
            );
        }
    }

    #[test]
    fn rsa_pss_hashes_with_its_parameters_hash() {
        // hashAlgorithm [0] { SEQUENCE { OID sha384 } }
        let hash_algorithm = oid(HASH_SHA384);
        let mut explicit = vec![SEQUENCE, u8::try_from(hash_algorithm.len()).unwrap()];
        explicit.extend_from_slice(&hash_algorithm);
        let mut parameters = vec![CONTEXT_0, u8::try_from(explicit.len()).unwrap()];
        parameters.extend_from_slice(&explicit);
        let der = skeleton(&pss(&parameters));
        assert_eq!(
            tls_server_end_point(&der),
            Some(hash(&digest::SHA384, &der))
        );

        // No hashAlgorithm: the default SHA-1, upgraded to SHA-256.
        let der = skeleton(&pss(&[]));
        assert_eq!(
            tls_server_end_point(&der),
            Some(hash(&digest::SHA256, &der))
        );
    }

    #[test]
    fn malformed_der_has_no_end_point_hash() {
        let der = certificate(&PKCS_ECDSA_P256_SHA256);
        assert_eq!(tls_server_end_point(&der[..der.len() - 1]), None);
        assert_eq!(tls_server_end_point(&[]), None);
        assert_eq!(tls_server_end_point(&[SEQUENCE, 0x80]), None);
        assert_eq!(tls_server_end_point(b"not a certificate"), None);
    }
}
