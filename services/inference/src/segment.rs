//! One Segment call: admission (a bounded queue), the warm model, the volume from the
//! store, the pipeline on a blocking thread, the label map back to the store.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use abdoseg_dataset::{proto::geometry_to_proto, sha256_hex};
use abdoseg_imaging::nifti::{ReadLimits, read_ct, write_labels};
use abdoseg_protos::{
    common::v1::{BoundingBox, ObjectRef, Organ, OrganStatistics},
    inference::v1::{
        SegmentOptions, SegmentRequest, SegmentResponse, SegmentationSummary, StageTimings,
    },
};
use abdoseg_storage::{Id, Key, keys::prediction};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::{
    Error, InferenceService,
    cache::Network,
    pipeline::{Options, segment},
    postprocess::organ_figures,
};

/// A place among the segmentations running or waiting; freed on drop.
#[derive(Debug)]
pub struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn duration(d: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d).ok()
}

impl InferenceService {
    /// Takes a place in the queue, or says RESOURCE_EXHAUSTED when it is full.
    pub fn admit(&self) -> Result<Admission, Error> {
        let limit = self.limits.concurrency + self.limits.queue_capacity;
        let before = self.pending.fetch_add(1, Ordering::SeqCst);
        let admission = Admission(Arc::clone(&self.pending));
        if before >= limit {
            return Err(Error::ResourceExhausted(format!(
                "{limit} segmentations are running or queued; retry later"
            )));
        }
        Ok(admission)
    }

    /// The request's options with the service's defaults.
    pub fn options(&self, options: Option<SegmentOptions>) -> Options {
        let options = options.unwrap_or_default();
        Options {
            batch_size: match options.batch_size {
                0 => self.limits.batch_size,
                n => (n as usize).min(256),
            },
            keep_largest_components: options.keep_largest_components.unwrap_or(true),
        }
    }

    /// Segments a volume in the store and writes the label map to the store.
    pub async fn segment_in_store(
        &self,
        request: SegmentRequest,
        deadline: Option<Instant>,
    ) -> Result<SegmentResponse, Error> {
        let volume = request
            .volume
            .ok_or_else(|| Error::InvalidArgument("volume is required".into()))?;
        let key =
            Key::parse(&volume.key).map_err(|e| Error::InvalidArgument(format!("volume: {e}")))?;
        let output = (!request.output_key.is_empty())
            .then(|| Key::parse(&request.output_key))
            .transpose()
            .map_err(|e| Error::InvalidArgument(format!("output_key: {e}")))?;
        let options = self.options(request.options);
        let admission = self.admit()?;
        let started = Instant::now();
        let bytes = self
            .storage
            .get_bounded(&key, self.limits.max_input_bytes)
            .await?;
        let read = started.elapsed();
        let gzip = output.as_ref().is_none_or(|k| k.as_str().ends_with(".gz"));
        let mut done = self
            .run(admission, bytes, &request.model_id, options, gzip, deadline)
            .await?;
        let started = Instant::now();
        let output = match output {
            Some(key) => key,
            None => prediction(&Id::parse(&format!(
                "{}-{}",
                &done.summary.input_sha256[..16],
                done.summary.model_id
            ))?),
        };
        let info = self.storage.put(&output, Bytes::from(done.encoded)).await?;
        if let Some(timings) = done.summary.timings.as_mut() {
            timings.read = duration(read);
            timings.write = duration(
                started.elapsed()
                    + timings
                        .write
                        .and_then(|d| Duration::try_from(d).ok())
                        .unwrap_or_default(),
            );
        }
        Ok(SegmentResponse {
            label_map: Some(ObjectRef {
                key: output.to_string(),
                etag: info.etag.unwrap_or_default(),
                size_bytes: info.size,
            }),
            summary: Some(done.summary),
        })
    }

    /// The core of both RPCs: a place in the queue, the warm model, the pipeline on a
    /// blocking thread (stopped when the caller goes away or its deadline passes), the
    /// encoded label map and its summary.
    pub async fn run(
        &self,
        _admission: Admission,
        bytes: Bytes,
        model_id: &str,
        options: Options,
        gzip: bool,
        deadline: Option<Instant>,
    ) -> Result<Done, Error> {
        let queued = Instant::now();
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Error::Internal("the service is stopping".into()))?;
        let queued = queued.elapsed();
        let model = self.cache.get(&self.storage, model_id).await?;

        // Stops the blocking work when this call is dropped (the caller went away).
        let token = CancellationToken::new();
        let _stop_on_drop = token.clone().drop_guard();
        let limits = ReadLimits {
            max_bytes: self.limits.max_voxel_bytes,
            ..ReadLimits::default()
        };
        let worker = Arc::clone(&model);
        // Hashing, decoding and the pipeline all run off the async runtime.
        let (input_sha256, segmentation, ct, encoded, write) =
            tokio::task::spawn_blocking(move || {
                let input_sha256 = sha256_hex(&bytes);
                let ct = read_ct(&bytes, &limits).map_err(|e| {
                    Error::InvalidArgument(format!("the volume cannot be read: {e}"))
                })?;
                drop(bytes);
                let cancelled =
                    || token.is_cancelled() || deadline.is_some_and(|d| Instant::now() > d);
                let preprocessing = &worker.record.preprocessing;
                let segmentation = match &worker.net {
                    Network::Cpu(net) => segment(
                        net,
                        &Default::default(),
                        &worker.intensity,
                        preprocessing,
                        &ct,
                        options,
                        &cancelled,
                    ),
                    #[cfg(feature = "cuda")]
                    Network::Cuda(net) => segment(
                        net,
                        &Default::default(),
                        &worker.intensity,
                        preprocessing,
                        &ct,
                        options,
                        &cancelled,
                    ),
                }
                .map_err(|e| {
                    let late = deadline.is_some_and(|d| Instant::now() > d);
                    if late && matches!(e, Error::Cancelled) {
                        Error::DeadlineExceeded
                    } else {
                        e
                    }
                })?;
                let started = Instant::now();
                let encoded = write_labels(&segmentation.labels, gzip)
                    .map_err(|e| Error::Internal(format!("cannot encode the label map: {e}")))?;
                Ok::<_, Error>((input_sha256, segmentation, ct, encoded, started.elapsed()))
            })
            .await
            .map_err(|e| Error::Internal(format!("segmentation crashed: {e}")))??;
        model.served();

        let voxel_ml = ct.geometry.voxel_volume_ml();
        let organs = organ_figures(&segmentation.labels.data, &ct.data)
            .into_iter()
            .map(|f| OrganStatistics {
                organ: Organ::try_from(i32::from(f.class) + 1).unwrap_or(Organ::Unspecified) as i32,
                voxel_count: f.voxels,
                volume_ml: f.voxels as f64 * voxel_ml,
                mean_hu: f.mean_hu,
                bounding_box: f.bounds.map(|(min, max)| BoundingBox {
                    min: min.iter().map(|&v| v as u32).collect(),
                    max: max.iter().map(|&v| v as u32).collect(),
                }),
            })
            .collect();
        Ok(Done {
            summary: SegmentationSummary {
                model_id: model.record.model_id.clone(),
                model_version: model.record.abdoseg_version.clone(),
                organs,
                timings: Some(StageTimings {
                    read: None,
                    preprocess: duration(segmentation.preprocess),
                    inference: duration(segmentation.inference),
                    postprocess: duration(segmentation.postprocess),
                    write: duration(write),
                    queued: duration(queued),
                }),
                output_sha256: sha256_hex(&encoded),
                input_sha256,
                geometry: Some(geometry_to_proto(&ct.geometry)),
                device: self.device_proto() as i32,
            },
            encoded,
        })
    }
}

/// A finished segmentation: the encoded label map and its summary.
#[derive(Debug)]
pub struct Done {
    pub encoded: Vec<u8>,
    pub summary: SegmentationSummary,
}

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
