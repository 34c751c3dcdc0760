//! Real labelled CTs in quickstart: as templates whose variants join the training data
//! (`--templates`), and as cases scored after every epoch (`--real-validation`).

use std::path::{Path, PathBuf};

use abdoseg_imaging::{
    nifti::{ReadLimits, read_ct, read_labels_on, write_i16, write_labels},
    phantom::{Center, Template, template_variant},
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
}

/// The cases of `dir` (`images/X_0000.nii[.gz]` with `labels/X.nii[.gz]`), sorted by id.
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
        cases.push(RealCase {
            case_id,
            image,
            labels,
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
                template = Some(Template::new(ct, &labels)?);
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
