//! The caller's deadline, read from its `grpc-timeout` header, so that work running off
//! the request path (a blocking thread) can stop when the caller has stopped waiting.

use std::time::{Duration, Instant};

/// The caller's deadline from its `grpc-timeout` header ("<digits><unit>").
pub fn deadline(metadata: &tonic::metadata::MetadataMap) -> Option<Instant> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_become_deadlines() {
        let at = |value: &str| {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert("grpc-timeout", value.parse().unwrap());
            deadline(&metadata).map(|d| d.saturating_duration_since(Instant::now()))
        };
        let two_seconds = at("2S").unwrap();
        assert!(two_seconds > Duration::from_millis(1900) && two_seconds <= Duration::from_secs(2));
        assert!(at("1500m").unwrap() <= Duration::from_millis(1500));
        assert!(at("1H").unwrap() > Duration::from_secs(3500));
        assert_eq!(at("12X"), None, "unknown unit");
        assert_eq!(at("S"), None, "no digits");
        assert_eq!(deadline(&tonic::metadata::MetadataMap::new()), None);
    }
}
