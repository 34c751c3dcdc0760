//! Real labelled CTs in quickstart: as templates whose variants join the training data
//! (`--templates`), and as cases scored after every epoch (`--real-validation`).

use std::path::{Path, PathBuf};

use abdoseg_imaging::{
    nifti::{ReadLimits, read_ct, read_labels_on, read_labels_remapped, write_i16, write_labels},
    phantom::{Center, StructureGroup, Template, template_variant},
};
use abdoseg_storage::{Id, Storage, keys::RawDatasetKeys};
use anyhow::Context;
use bytes::Bytes;

/// A labelled case of an AbdomenCT-1K-style folder.
#[derive(Debug, Clone)]
pub struct RealCase {
    pub case_id: String,
    pub image: PathBuf,
    pub labels: PathBuf,
    /// `structures/X.nii[.gz]` with `structures/X.json` (`{"id": "name"}`, as
    /// TotalSegmentator names its classes), when the folder has them: further structures
    /// a template's variants redraw on their own (`StructureGroup`).
    pub structures: Option<(PathBuf, PathBuf)>,
}

impl RealCase {
    /// Every file of the case, for content digests.
    pub fn files(&self) -> Vec<&Path> {
        let mut files = vec![self.image.as_path(), self.labels.as_path()];
        if let Some((map, names)) = &self.structures {
            files.extend([map.as_path(), names.as_path()]);
        }
        files
    }
}

/// The cases of `dir` (`images/X_0000.nii[.gz]` with `labels/X.nii[.gz]`, and optionally
/// `structures/X.nii[.gz]` with `structures/X.json`), sorted by id.
pub fn list_cases(dir: &Path) -> anyhow::Result<Vec<RealCase>> {
    let images = dir.join("images");
    let mut cases = Vec::new();
    for entry in
        std::fs::read_dir(&images).with_context(|| format!("cannot list {}", images.display()))?
    {
        let image = entry?.path();
        let name = image
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some((case_id, extension)) = [".nii.gz", ".nii"].iter().find_map(|ext| {
            name.strip_suffix(ext)
                .and_then(|stem| stem.strip_suffix("_0000"))
                .map(|id| (id.to_owned(), *ext))
        }) else {
            continue;
        };
        let labels = dir.join("labels").join(format!("{case_id}{extension}"));
        anyhow::ensure!(
            labels.is_file(),
            "{} has no label map {}",
            image.display(),
            labels.display()
        );
        let map = dir.join("structures").join(format!("{case_id}{extension}"));
        let names = dir.join("structures").join(format!("{case_id}.json"));
        anyhow::ensure!(
            map.is_file() == names.is_file(),
            "{} needs both {} and {}",
            image.display(),
            map.display(),
            names.display()
        );
        cases.push(RealCase {
            case_id,
            image,
            labels,
            structures: map.is_file().then_some((map, names)),
        });
    }
    anyhow::ensure!(
        !cases.is_empty(),
        "no labelled cases under {}",
        dir.display()
    );
    cases.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    Ok(cases)
}

/// Writes `per_case` variants of every case of `dir` as one raw dataset (cases
/// `Case_TTVVV`: template `TT`, variant `VVV`), skipping those the store has.
pub async fn write_template_variants(
    storage: &Storage,
    keys: &RawDatasetKeys,
    dir: &Path,
    per_case: usize,
) -> anyhow::Result<usize> {
    let cases = list_cases(dir)?;
    anyhow::ensure!(
        cases.len() < 100 && per_case < 1000,
        "at most 99 templates of 999 variants each"
    );
    let limits = ReadLimits::default();
    let mut written = 0;
    for (t, case) in cases.iter().enumerate() {
        let mut template = None;
        for v in 1..=per_case {
            let case_id = Id::parse(&format!("Case_{:02}{v:03}", t + 1))?;
            let (image_key, label_key) = (keys.image(&case_id), keys.label(&case_id));
            if storage.exists(&image_key).await? && storage.exists(&label_key).await? {
                continue;
            }
            if template.is_none() {
                let read = |path: &PathBuf| {
                    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
                };
                let ct = read_ct(&read(&case.image)?, &limits)
                    .with_context(|| format!("template {} is not a usable CT", case.case_id))?;
                let labels = read_labels_on(&ct.geometry, &read(&case.labels)?, &limits)
                    .with_context(|| format!("template {}'s labels", case.case_id))?;
                let mut made = Template::new(ct, &labels)?;
                if let Some((map, names)) = &case.structures {
                    let groups = read_structure_groups(&read(map)?, &read(names)?, &limits)
                        .with_context(|| format!("template {}'s structures", case.case_id))?;
                    made = made.with_groups(&groups)?;
                }
                template = Some(made);
            }
            let Some(template) = &template else { continue };
            let variant = template_variant(template, 1, t * 1000 + v, Center::new(1, v % 3))?;
            storage
                .put(
                    &label_key,
                    Bytes::from(write_labels(&variant.labels, true)?),
                )
                .await?;
            storage
                .put(&image_key, Bytes::from(write_i16(&variant.image, true)?))
                .await?;
            written += 1;
        }
    }
    Ok(written)
}

/// A structure map read as [`StructureGroup`] codes: `names` (`{"id": "name"}`) says what
/// each value is; values it names in no group become 0, values it does not name are
/// refused.
fn read_structure_groups(
    map: &[u8],
    names: &[u8],
    limits: &ReadLimits,
) -> anyhow::Result<abdoseg_imaging::Volume<u8>> {
    let names: std::collections::BTreeMap<String, String> = serde_json::from_slice(names)
        .context("the structure names are not a JSON object of names")?;
    let mut remap = [None; 256];
    remap[0] = Some(0);
    for (id, name) in &names {
        let value: u8 = id
            .parse()
            .with_context(|| format!("structure id {id:?} is not 0 to 255"))?;
        remap[usize::from(value)] =
            Some(StructureGroup::of_structure(name).map_or(0, StructureGroup::code));
    }
    Ok(read_labels_remapped(map, limits, &remap)?)
}

#[cfg(test)]
mod tests {
    use abdoseg_imaging::{Geometry, Volume, nifti::write_labels};
    use ndarray::Array3;

    use super::*;

    #[test]
    fn structure_maps_are_read_as_groups_and_unnamed_values_refused() {
        let mut affine = [[0.0; 4]; 4];
        for (a, row) in affine.iter_mut().enumerate() {
            row[a] = 1.0;
        }
        let geometry = Geometry::new([3, 1, 1], affine).unwrap();
        let map = |values: [u8; 3]| {
            let volume = Volume {
                geometry: geometry.clone(),
                data: Array3::from_shape_vec((1, 1, 3), values.to_vec()).unwrap(),
            };
            write_labels(&volume, true).unwrap()
        };
        let names = br#"{"86": "autochthon_left", "52": "aorta", "79": "spinal_cord"}"#;
        let limits = ReadLimits::default();
        let groups = read_structure_groups(&map([86, 52, 79]), names, &limits).unwrap();
        let codes: Vec<u8> = groups.data.iter().copied().collect();
        assert_eq!(
            codes,
            [
                StructureGroup::Muscle.code(),
                StructureGroup::Artery.code(),
                0
            ]
        );
        // A value the names leave out, and names that are not a JSON object, are refused.
        assert!(read_structure_groups(&map([86, 7, 0]), names, &limits).is_err());
        assert!(read_structure_groups(&map([0, 0, 0]), b"[1]", &limits).is_err());
    }
}
