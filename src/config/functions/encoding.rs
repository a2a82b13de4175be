//! Encoding, hashing and conversion to strings: `jsonencode`,
//! `jsondecode`, `base64encode`, `base64decode`, `sha256`, `tostring`.
//!
//! `jsonencode` writes map keys in lexical order, as Terraform does, so the
//! same value always encodes to the same text. `jsondecode` is bounded by
//! serde_json's nesting limit and rejects numbers outside `f64`. Base64 is
//! the standard alphabet with padding (RFC 4648). Does not handle YAML.

use hcl::Value;

use super::args::{describe, quote_truncated, sorted_keys, to_str, Args, FnResult};

pub(super) fn jsonencode(a: &Args<'_>) -> FnResult {
    serde_json::to_string(&sorted_keys(a.get(0)))
        .map(Value::String)
        .map_err(|e| format!("cannot encode {} as json: {e}", a.at(0)))
}

pub(super) fn jsondecode(a: &Args<'_>) -> FnResult {
    let text = a.string(0)?;
    serde_json::from_str::<Value>(&text).map_err(|e| {
        format!(
            "{} is not valid json ({e}): {}",
            a.at(0),
            quote_truncated(&text, 40)
        )
    })
}

pub(super) fn tostring(a: &Args<'_>) -> FnResult {
    match a.get(0) {
        Value::Null => Ok(Value::Null),
        v => to_str(v)
            .map(|s| Value::String(s.into_owned()))
            .ok_or_else(|| {
                format!(
                    "cannot convert {} to a string; use `jsonencode` to serialize collections",
                    describe(v)
                )
            }),
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(super) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode standard base64 (padding required, no whitespace), or say at
/// which character it went wrong.
pub(super) fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return Err(format!("its length {} is not a multiple of 4", bytes.len()));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (c, chunk) in bytes.chunks(4).enumerate() {
        let last = (c + 1) * 4 == bytes.len();
        let mut n = 0u32;
        let mut pad = 0;
        for (k, &ch) in chunk.iter().enumerate() {
            let v = match ch {
                b'=' if last && k >= 2 => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => {
                    return Err(format!("padding in the middle at offset {}", c * 4 + k))
                }
                _ => match BASE64.iter().position(|&x| x == ch) {
                    Some(v) => v as u32,
                    None => return Err(format!("invalid character at offset {}", c * 4 + k)),
                },
            };
            n = (n << 6) | v;
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Ok(out)
}

/// Lowercase hex SHA-256.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn base64encode(a: &Args<'_>) -> FnResult {
    Ok(Value::String(base64_encode(a.string(0)?.as_bytes())))
}

pub(super) fn base64decode(a: &Args<'_>) -> FnResult {
    let text = a.string(0)?;
    let bytes =
        base64_decode(&text).map_err(|e| format!("{} is not valid base64: {e}", a.at(0)))?;
    String::from_utf8(bytes).map(Value::String).map_err(|e| {
        format!(
            "{} decodes to bytes that are not utf-8 text (invalid byte at offset {})",
            a.at(0),
            e.utf8_error().valid_up_to()
        )
    })
}

pub(super) fn sha256(a: &Args<'_>) -> FnResult {
    Ok(Value::String(sha256_hex(a.string(0)?.as_bytes())))
}
