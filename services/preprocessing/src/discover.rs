//! Finding the cases of a raw dataset: the AbdomenCT-1K layout (`images/`, `labels/`) or
//! nnU-Net's (`imagesTr/`, `labelsTr/`, `dataset.json`).

use std::collections::BTreeMap;

use abdoseg_dataset::{
    labels::remap_from_dataset_json, manifest::SourceObject, prepare::identity_remap,
};
use abdoseg_storage::{Id, Key, ObjectInfo, Storage};

use crate::Error;

/// Which layout a raw dataset has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    AbdomenCt1k,
    NnUnet,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::AbdomenCt1k => "abdomenct1k",
            Layout::NnUnet => abdoseg_dataset::labels::NNUNET_LAYOUT,
        }
    }

    fn folders(self) -> (&'static str, &'static str) {
        match self {
            Layout::AbdomenCt1k => ("images", "labels"),
            Layout::NnUnet => ("imagesTr", "labelsTr"),
        }
    }
}

/// One case's source objects; the label may be missing (then the case fails).
#[derive(Debug, Clone)]
pub struct CaseSource {
    pub case_id: Id,
    pub image: ObjectInfo,
    pub label: Option<ObjectInfo>,
}

/// A discovered dataset.
#[derive(Debug, Clone)]
pub struct RawDataset {
    pub layout: Layout,
    pub cases: Vec<CaseSource>,
    /// Label value → class, from `dataset.json` for nnU-Net datasets.
    pub remap: [Option<u8>; 256],
}

pub fn source_object(info: &ObjectInfo) -> SourceObject {
    SourceObject {
        key: info.key.to_string(),
        etag: info.etag.clone(),
        size: info.size,
    }
}

async fn nnunet_remap(storage: &Storage, prefix: &Key) -> Result<[Option<u8>; 256], Error> {
    let key = Key::parse(&format!("{prefix}/dataset.json")).map_err(Error::from)?;
    let bytes = storage.get(&key).await?;
    remap_from_dataset_json(&bytes).map_err(Error::InvalidDataset)
}

/// Lists the cases under `prefix`; `layout` None detects it.
pub async fn discover(
    storage: &Storage,
    prefix: &Key,
    layout: Option<Layout>,
) -> Result<RawDataset, Error> {
    let layout = match layout {
        Some(layout) => layout,
        None => {
            let children = storage.list_children(prefix).await?;
            if children.iter().any(|c| c == "imagesTr") {
                Layout::NnUnet
            } else {
                Layout::AbdomenCt1k
            }
        }
    };
    let (images_dir, labels_dir) = layout.folders();
    let images = storage
        .list(&Key::parse(&format!("{prefix}/{images_dir}")).map_err(Error::from)?)
        .await?;
    let labels: BTreeMap<String, ObjectInfo> = storage
        .list(&Key::parse(&format!("{prefix}/{labels_dir}")).map_err(Error::from)?)
        .await?
        .into_iter()
        .map(|o| (o.key.file_name().to_owned(), o))
        .collect();
    let mut cases = Vec::new();
    for image in images {
        let name = image.key.file_name();
        let Some(case) = name
            .strip_suffix("_0000.nii.gz")
            .or_else(|| name.strip_suffix("_0000.nii"))
        else {
            continue;
        };
        let Ok(case_id) = Id::parse(case) else {
            continue;
        };
        let label = labels
            .get(&format!("{case}.nii.gz"))
            .or_else(|| labels.get(&format!("{case}.nii")))
            .cloned();
        cases.push(CaseSource {
            case_id,
            image,
            label,
        });
    }
    cases.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    if cases.is_empty() {
        return Err(Error::NoCases(format!("{prefix}/{images_dir}")));
    }
    let remap = match layout {
        Layout::AbdomenCt1k => identity_remap(),
        Layout::NnUnet => nnunet_remap(storage, prefix).await?,
    };
    Ok(RawDataset {
        layout,
        cases,
        remap,
    })
}
