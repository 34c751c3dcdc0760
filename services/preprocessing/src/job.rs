//! The PrepareDataset job: content-addressed id, patient-level split, cases processed in
//! parallel off the async runtime, finished cases reused, the manifest written last.

use std::{sync::Arc, time::SystemTime};

use abdoseg_dataset::{
    FORMAT_VERSION,
    config::{PreprocessConfig, Scheme},
    manifest::{
        CaseRecord, FailedCase, Fingerprint, HuHistograms, Manifest, SparseHistogram, Split,
        SplitFractions, fingerprint,
    },
    prepare::{case_histograms, prepare_case, volume_shard_peak_bytes},
    sha256_hex, split,
};
use abdoseg_imaging::nifti::{ReadLimits, read_info};
use abdoseg_server::{MemoryBudget, Reservation};
use abdoseg_storage::{Id, Key, Storage, keys::DatasetKeys};
use bytes::Bytes;
use futures::{StreamExt, stream};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    discover::{CaseSource, RawDataset, source_object},
};

/// What a caller asked for.
#[derive(Debug, Clone)]
pub struct PrepareRequest {
    pub source_prefix: Key,
    pub preprocessing: PreprocessConfig,
    pub seed: u64,
    pub split: SplitFractions,
}

/// Progress of a job.
#[derive(Debug, Clone)]
pub enum Event {
    CaseFinished {
        case_id: String,
        split: Split,
        slices: usize,
        reused: bool,
    },
    CaseFailed {
        case_id: String,
        reason: String,
    },
    Ready {
        manifest: Key,
        failed: usize,
    },
}

/// A job ready to run: everything checked, the id fixed.
#[derive(Debug)]
pub struct Job {
    pub dataset_id: Id,
    pub request: PrepareRequest,
    pub raw: RawDataset,
    pub splits: Vec<Split>,
}

#[derive(Serialize)]
struct IdInputs<'a> {
    format_version: u32,
    source_prefix: &'a str,
    layout: &'a str,
    sources: Vec<(String, Option<String>, u64)>,
    preprocessing: &'a PreprocessConfig,
    seed: u64,
    split: &'a SplitFractions,
}

impl Job {
    /// The id is a digest of the sources (keys, ETags, sizes), the preprocessing, the seed
    /// and the split: the same request on the same data names the same dataset.
    pub fn new(request: PrepareRequest, raw: RawDataset) -> Result<Self, Error> {
        let mut sources = Vec::new();
        for case in &raw.cases {
            for object in std::iter::once(&case.image).chain(&case.label) {
                sources.push((object.key.to_string(), object.etag.clone(), object.size));
            }
        }
        let inputs = IdInputs {
            format_version: FORMAT_VERSION,
            source_prefix: request.source_prefix.as_str(),
            layout: raw.layout.name(),
            sources,
            preprocessing: &request.preprocessing,
            seed: request.seed,
            split: &request.split,
        };
        let digest =
            sha256_hex(&serde_json::to_vec(&inputs).map_err(|e| Error::Internal(e.to_string()))?);
        let dataset_id = Id::parse(&format!("ds-{}", &digest[..16]))?;
        let ids: Vec<String> = raw.cases.iter().map(|c| c.case_id.to_string()).collect();
        let splits = split::assign(&ids, request.seed, &request.split);
        Ok(Self {
            dataset_id,
            request,
            raw,
            splits,
        })
    }
}

/// Runs a job to its manifest, reporting every case. Stops between cases on `cancel`.
pub async fn run(
    storage: Storage,
    job: Job,
    workers: usize,
    (limits, budget): (ReadLimits, MemoryBudget),
    events: mpsc::Sender<Result<Event, Error>>,
    cancel: CancellationToken,
) -> Result<Manifest, Error> {
    let keys = DatasetKeys::new(&job.dataset_id);
    // A finished dataset is reported, not redone.
    if storage.exists(&keys.manifest()).await? {
        let manifest: Manifest = storage.get_json(&keys.manifest()).await?;
        for case in &manifest.cases {
            let _ = events
                .send(Ok(Event::CaseFinished {
                    case_id: case.case_id.clone(),
                    split: case.split,
                    slices: case.slices.len(),
                    reused: true,
                }))
                .await;
        }
        for failed in &manifest.failed {
            let _ = events
                .send(Ok(Event::CaseFailed {
                    case_id: failed.case_id.clone(),
                    reason: failed.reason.clone(),
                }))
                .await;
        }
        let _ = events
            .send(Ok(Event::Ready {
                manifest: keys.manifest(),
                failed: manifest.failed.len(),
            }))
            .await;
        return Ok(manifest);
    }

    let shared = Arc::new(Shared {
        storage: storage.clone(),
        keys: keys.clone(),
        remap: job.raw.remap,
        request: job.request.clone(),
        limits,
        budget,
    });
    let intensity = match &job.request.preprocessing.scheme {
        Scheme::Zscore => {
            let fp = zscore_fingerprint(&shared, &job, workers).await?;
            job.request.preprocessing.intensity(Some(&fp))
        }
        Scheme::None | Scheme::He { .. } | Scheme::Clahe { .. } => {
            job.request.preprocessing.intensity(None)
        }
    }
    .map_err(Error::InvalidArgument)?;
    let intensity = Arc::new(intensity);

    let cases: Vec<(CaseSource, Split)> = job
        .raw
        .cases
        .iter()
        .cloned()
        .zip(job.splits.iter().copied())
        .collect();
    let mut outcomes = stream::iter(cases)
        .map(|(case, split)| {
            let shared = Arc::clone(&shared);
            let intensity = Arc::clone(&intensity);
            let cancel = cancel.clone();
            async move {
                if cancel.is_cancelled() {
                    return Err(Error::ShuttingDown);
                }
                Ok(process_case(&shared, &intensity, case, split).await)
            }
        })
        .buffer_unordered(workers.max(1));

    let mut records = Vec::new();
    let mut failed = Vec::new();
    while let Some(outcome) = outcomes.next().await {
        match outcome? {
            Ok((record, reused)) => {
                let _ = events
                    .send(Ok(Event::CaseFinished {
                        case_id: record.case_id.clone(),
                        split: record.split,
                        slices: record.slices.len(),
                        reused,
                    }))
                    .await;
                records.push(record);
            }
            Err(case_failure) => {
                tracing::warn!(case = %case_failure.case_id, reason = %case_failure.reason, "case skipped");
                let _ = events
                    .send(Ok(Event::CaseFailed {
                        case_id: case_failure.case_id.clone(),
                        reason: case_failure.reason.clone(),
                    }))
                    .await;
                failed.push(case_failure);
            }
        }
    }
    records.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    failed.sort_by(|a, b| a.case_id.cmp(&b.case_id));

    let fp = fingerprint(&records);
    for record in &mut records {
        record.hu_histograms.clear();
    }
    let manifest = Manifest {
        dataset_id: job.dataset_id.to_string(),
        format_version: FORMAT_VERSION,
        abdoseg_version: env!("CARGO_PKG_VERSION").to_owned(),
        source_prefix: job.request.source_prefix.to_string(),
        layout: job.raw.layout.name().to_owned(),
        preprocessing: job.request.preprocessing.clone(),
        seed: job.request.seed,
        split: job.request.split,
        cases: records,
        failed,
        fingerprint: fp.clone(),
        created_at: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    storage.put_json(&keys.fingerprint(), &fp).await?;
    // Written last: a manifest means the dataset is complete. Create-only, so a
    // concurrent run of the same request cannot replace it.
    let body = Bytes::from(
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?,
    );
    match storage.put_if_absent(&keys.manifest(), body).await {
        Ok(_) | Err(abdoseg_storage::StorageError::AlreadyExists { .. }) => {}
        Err(other) => return Err(other.into()),
    }
    let manifest: Manifest = storage.get_json(&keys.manifest()).await?;
    let _ = events
        .send(Ok(Event::Ready {
            manifest: keys.manifest(),
            failed: manifest.failed.len(),
        }))
        .await;
    Ok(manifest)
}

struct Shared {
    storage: Storage,
    keys: DatasetKeys,
    remap: [Option<u8>; 256],
    request: PrepareRequest,
    limits: ReadLimits,
    budget: MemoryBudget,
}

/// Longest a case waits for memory that other work holds.
const CASE_MEMORY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(600);

fn failure(case: &CaseSource, reason: impl ToString) -> FailedCase {
    FailedCase {
        case_id: case.case_id.to_string(),
        reason: reason.to_string(),
    }
}

/// Reads a case's two objects, refusing outsized ones before reading them, and reserves
/// the memory preparing them takes (estimated from the image's header) before anything
/// is decoded.
async fn read_sources(
    shared: &Shared,
    case: &CaseSource,
) -> Result<(Bytes, Bytes, Reservation), FailedCase> {
    let Some(label) = &case.label else {
        return Err(failure(case, "missing label map"));
    };
    let image = shared
        .storage
        .get_bounded(&case.image.key, shared.limits.max_bytes)
        .await
        .map_err(|e| failure(case, format!("image: {e}")))?;
    let label = shared
        .storage
        .get_bounded(&label.key, shared.limits.max_bytes)
        .await
        .map_err(|e| failure(case, format!("label map: {e}")))?;
    let info = read_info(&image, &shared.limits).map_err(|e| failure(case, e))?;
    let peak = volume_shard_peak_bytes(
        &info,
        (image.len() + label.len()) as u64,
        &shared.request.preprocessing,
    ) + info.voxels() * 3;
    let reservation = shared
        .budget
        .reserve(peak, CASE_MEMORY_PATIENCE)
        .await
        .map_err(|e| failure(case, e))?;
    Ok((image, label, reservation))
}

/// One case: reused when its record and shard are already there, else prepared.
async fn process_case(
    shared: &Arc<Shared>,
    intensity: &Arc<abdoseg_imaging::intensity::Intensity>,
    case: CaseSource,
    split: Split,
) -> Result<(CaseRecord, bool), FailedCase> {
    let record_key = shared.keys.case_record(&case.case_id);
    let shard_key = shared.keys.shard(&case.case_id);
    if let Ok(record) = shared.storage.get_json::<CaseRecord>(&record_key).await
        && record.split == split
        && shared
            .storage
            .head(&shard_key)
            .await
            .is_ok_and(|head| head.size == record.shard_bytes)
    {
        return Ok((record, true));
    }

    let (image, label, reservation) = read_sources(shared, &case).await?;
    let work = {
        let shared = Arc::clone(shared);
        let intensity = Arc::clone(intensity);
        tokio::task::spawn_blocking(move || {
            let _reservation = reservation;
            prepare_case(
                &image,
                &label,
                &shared.remap,
                &shared.request.preprocessing,
                &intensity,
                &shared.limits,
            )
        })
    };
    let prepared = work
        .await
        .map_err(|e| failure(&case, format!("worker failed: {e}")))?
        .map_err(|e| failure(&case, e))?;
    let record = CaseRecord {
        case_id: case.case_id.to_string(),
        split,
        shard_key: shard_key.to_string(),
        shard_sha256: sha256_hex(&prepared.shard),
        shard_bytes: prepared.shard.len() as u64,
        slices: prepared.slices,
        shape: prepared.shape,
        spacing: prepared.spacing,
        orientation: prepared.orientation,
        source_image: source_object(&case.image),
        source_label: case
            .label
            .as_ref()
            .map(source_object)
            .ok_or_else(|| failure(&case, "missing label map"))?,
        hu_histograms: prepared.hu_histograms,
    };
    // Shard first (a whole-object write), then the record that vouches for it.
    shared
        .storage
        .put(&shard_key, Bytes::from(prepared.shard))
        .await
        .map_err(|e| failure(&case, format!("writing the shard: {e}")))?;
    shared
        .storage
        .put_json(&record_key, &record)
        .await
        .map_err(|e| failure(&case, format!("writing the case record: {e}")))?;
    Ok((record, false))
}

/// `zscore` needs the training split's foreground statistics before any slice is made.
async fn zscore_fingerprint(
    shared: &Arc<Shared>,
    job: &Job,
    workers: usize,
) -> Result<Fingerprint, Error> {
    let train: Vec<CaseSource> = job
        .raw
        .cases
        .iter()
        .zip(&job.splits)
        .filter(|(_, split)| **split == Split::Train)
        .map(|(case, _)| case.clone())
        .collect();
    let per_case: Vec<Vec<SparseHistogram>> = stream::iter(train)
        .map(|case| {
            let shared = Arc::clone(shared);
            async move {
                // Unreadable cases are reported by the preparation pass itself.
                let (image, label, reservation) = read_sources(&shared, &case).await.ok()?;
                let (remap, limits) = (shared.remap, shared.limits);
                tokio::task::spawn_blocking(move || {
                    let _reservation = reservation;
                    case_histograms(&image, &label, &remap, &limits)
                })
                .await
                .ok()?
                .ok()
            }
        })
        .buffer_unordered(workers.max(1))
        .filter_map(|histograms| async move { histograms })
        .collect()
        .await;
    let mut merged = HuHistograms::new();
    for histograms in &per_case {
        merged.merge_sparse(histograms);
    }
    let zscore = merged.zscore().ok_or_else(|| {
        Error::InvalidDataset(
            "zscore needs foreground voxels in the training split; none could be read".into(),
        )
    })?;
    Ok(Fingerprint {
        zscore: Some(zscore),
        ..Fingerprint::default()
    })
}
