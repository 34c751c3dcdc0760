//! Reports in the store: `reports/{id}/` holds `report.json`, `report.md`,
//! `report.html`, `loss.svg`, `iou.svg` and `overlays/*.png`.

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use abdoseg_storage::{Id, Key, Storage, StorageError, keys::ReportKeys};
use bytes::Bytes;

use crate::{Error, report};

/// A new report id that sorts by creation time: `report-{millis}-{random}`.
pub fn new_report_id() -> (String, u64) {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    (
        format!("report-{millis:013}-{:08x}", rand::random::<u32>()),
        millis,
    )
}

pub fn keys(report_id: &str) -> Result<ReportKeys, Error> {
    let id = Id::parse(report_id).map_err(|e| Error::InvalidArgument(format!("report_id: {e}")))?;
    Ok(ReportKeys::new(&id))
}

/// The key of an overlay PNG of a report.
pub fn overlay_key(keys: &ReportKeys, name: &str) -> Result<Key, Error> {
    let id = Id::parse(name).map_err(|e| Error::Internal(format!("overlay name {name:?}: {e}")))?;
    Ok(keys.overlay(&id))
}

/// Writes the renderings first and the record last, so a stored record always has them.
/// `pngs` holds the overlays' bytes by key (already stored), for the HTML page.
pub async fn store(
    storage: &Storage,
    record: &report::ReportRecord,
    pngs: &HashMap<String, Vec<u8>>,
) -> Result<(), Error> {
    let keys = keys(&record.report_id)?;
    for (key, svg) in [
        (keys.loss_curve(), report::loss_curves(&record.history)),
        (keys.iou_curve(), report::iou_curves(&record.history)),
    ] {
        if let Some(svg) = svg {
            storage.put(&key, Bytes::from(svg)).await?;
        }
    }
    let html = report::html(record, &|key| pngs.get(key).cloned());
    storage
        .put(&keys.markdown(), Bytes::from(report::markdown(record)))
        .await?;
    storage.put(&keys.html(), Bytes::from(html)).await?;
    storage.put_json(&keys.record(), record).await?;
    Ok(())
}

pub async fn load(storage: &Storage, report_id: &str) -> Result<report::ReportRecord, Error> {
    let keys = keys(report_id)?;
    Ok(storage.get_json(&keys.record()).await?)
}

/// Every stored report, newest first; reports still being written are skipped.
pub async fn list(storage: &Storage) -> Result<Vec<report::ReportRecord>, Error> {
    let mut reports = Vec::new();
    for id in storage.list_children(&ReportKeys::all()).await? {
        match load(storage, &id).await {
            Ok(report) => reports.push(report),
            Err(Error::Storage(StorageError::NotFound { .. })) | Err(Error::InvalidArgument(_)) => {
            }
            Err(error) => return Err(error),
        }
    }
    reports.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(b.report_id.cmp(&a.report_id))
    });
    Ok(reports)
}
