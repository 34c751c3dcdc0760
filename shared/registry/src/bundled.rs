//! The default model shipped inside the binary (`shared/registry/bundled/`: its record and
//! weights, and a README with how it was trained and what it scores). Nothing is written
//! to a store: [`crate::resolve`] answers its id, and inference falls back to it for
//! `latest` while the store has no trained model (`--no-bundled-model` turns that off).
//! Its id sorts before every trained model's, so a store's trained models always win.

use crate::ModelRecord;

const RECORD: &[u8] = include_bytes!("../bundled/model.json");
const WEIGHTS: &[u8] = include_bytes!("../bundled/weights.mpk");

/// The shipped model's id: older than any trained model's (`model-<ms since 1970>-…`).
pub const BUNDLED_MODEL_ID: &str = "model-0000000000000-default";

/// The shipped model's record.
pub fn bundled_record() -> Result<ModelRecord, String> {
    let record: ModelRecord = serde_json::from_slice(RECORD)
        .map_err(|e| format!("the bundled model's record is not readable: {e}"))?;
    if record.model_id != BUNDLED_MODEL_ID || record.weights_bytes != WEIGHTS.len() as u64 {
        return Err("the bundled model's record does not match its weights".into());
    }
    Ok(record)
}

/// The shipped model's weights, in the format training writes.
pub fn bundled_weights() -> &'static [u8] {
    WEIGHTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_matches_the_weights_and_uses_physical_scale() {
        let record = bundled_record().unwrap();
        assert_eq!(record.model_id, BUNDLED_MODEL_ID);
        assert_eq!(record.weights_bytes, bundled_weights().len() as u64);
        assert!(record.preprocessing.pixel_size_mm.is_some());
        assert!(!record.history.is_empty());
    }
}
