//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, one per secret, space-separated, so that during a rotation a
//! receiver holding either secret can verify.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Decodes the secrets of a signing variable: one or more `whsec_<base64>`, separated
/// by spaces.
pub fn parse_secrets(value: &str) -> Result<Vec<Vec<u8>>, String> {
    let secrets: Vec<Vec<u8>> = value
        .split_whitespace()
        .map(|secret| {
            let encoded = secret
                .strip_prefix("whsec_")
                .ok_or("a secret does not start with whsec_")?;
            STANDARD
                .decode(encoded)
                .map_err(|_| "a secret is not valid base64 after whsec_")
        })
        .collect::<Result<_, _>>()?;
    if secrets.is_empty() {
        return Err("it is empty".to_owned());
    }
    Ok(secrets)
}

/// The `webhook-signature` value for a message.
pub fn signature(secrets: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example published with the Standard Webhooks specification.
    #[test]
    fn matches_the_specifications_example() {
        let secrets = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signed = signature(
            &secrets,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn two_secrets_sign_twice_during_a_rotation() {
        let secrets =
            parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_c2Vjb25k").unwrap();
        let signed = signature(
            &secrets,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        let parts: Vec<&str> = signed.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(parts[1].starts_with("v1,") && parts[1] != parts[0]);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for bad in ["", "secret", "whsec_!!!"] {
            assert!(parse_secrets(bad).is_err(), "{bad:?}");
        }
    }
}
