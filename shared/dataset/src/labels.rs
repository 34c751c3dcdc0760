//! Label conventions of raw datasets. AbdomenCT-1K's values are the classes themselves;
//! an nnU-Net dataset names its values in `dataset.json`, and abdoseg maps the names onto
//! the AbdomenCT-1K classes. Preparation and evaluation read ground truth the same way.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `layout` a manifest records for nnU-Net datasets.
pub const NNUNET_LAYOUT: &str = "nnunet";

#[derive(Deserialize)]
struct DatasetJson {
    labels: BTreeMap<String, serde_json::Value>,
}

/// Class of an nnU-Net label name in the AbdomenCT-1K convention.
pub fn class_of(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "background" => Some(0),
        "liver" => Some(1),
        "kidney" | "kidneys" | "kidney_left" | "kidney_right" | "left kidney" | "right kidney" => {
            Some(2)
        }
        "spleen" => Some(3),
        "pancreas" => Some(4),
        _ => None,
    }
}

/// Label value → class from an nnU-Net `dataset.json`; organs abdoseg does not segment
/// become background, values the file does not name have no class (an error on read).
pub fn remap_from_dataset_json(bytes: &[u8]) -> Result<[Option<u8>; 256], String> {
    let json: DatasetJson =
        serde_json::from_slice(bytes).map_err(|e| format!("dataset.json: {e}"))?;
    let mut remap = [None; 256];
    for (name, value) in json.labels {
        let value = value
            .as_u64()
            .filter(|&v| v < 256)
            .ok_or_else(|| format!("dataset.json: label {name:?} is not 0–255"))?;
        remap[value as usize] = Some(class_of(&name).unwrap_or(0));
    }
    Ok(remap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_onto_the_abdomenct1k_classes() {
        let json = br#"{"labels": {"background": 0, "spleen": 1, "kidney_right": 2,
            "kidney_left": 3, "liver": 6, "pancreas": 11, "aorta": 8}}"#;
        let remap = remap_from_dataset_json(json).unwrap();
        assert_eq!(&remap[..4], &[Some(0), Some(3), Some(2), Some(2)]);
        assert_eq!(
            (remap[6], remap[11], remap[8], remap[5]),
            (Some(1), Some(4), Some(0), None)
        );
        assert!(remap_from_dataset_json(br#"{"labels": {"liver": 300}}"#).is_err());
        assert!(remap_from_dataset_json(b"not json").is_err());
    }
}
