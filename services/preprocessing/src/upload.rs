//! UploadVolume: a NIfTI file streamed in chunks, checked whole, then stored.

use abdoseg_dataset::sha256_hex;
use abdoseg_imaging::nifti::{read_ct, read_labels};
use abdoseg_protos::{
    common::v1::ObjectRef,
    preprocessing::v1::{
        UploadVolumeRequest, UploadVolumeResponse, upload_destination::Destination,
        upload_volume_request::Message,
    },
};
use abdoseg_storage::{
    Id, Key,
    keys::{RawDatasetKeys, volume},
};
use bytes::Bytes;
use tokio_stream::StreamExt;
use tonic::Streaming;

use crate::{Error, PreprocessingService, grpc::geometry_to_proto};

fn id(field: &str, value: &str) -> Result<Id, Error> {
    Id::parse(value).map_err(|e| Error::InvalidArgument(format!("{field}: {e}")))
}

impl PreprocessingService {
    pub(crate) async fn upload(
        &self,
        mut upload: Streaming<UploadVolumeRequest>,
    ) -> Result<UploadVolumeResponse, Error> {
        let start = match upload
            .next()
            .await
            .transpose()
            .map_err(|s| Error::InvalidArgument(s.message().to_owned()))?
        {
            Some(UploadVolumeRequest {
                message: Some(Message::Start(start)),
            }) => start,
            Some(_) => {
                return Err(Error::InvalidArgument(
                    "the first message must be start, before any chunk".into(),
                ));
            }
            None => return Err(Error::InvalidArgument("the upload was empty".into())),
        };
        let (key, is_label): (Key, bool) = match start.destination.and_then(|d| d.destination) {
            Some(Destination::DatasetImage(case)) => (
                RawDatasetKeys::imported(&id("dataset", &case.dataset)?)
                    .image(&id("case_id", &case.case_id)?),
                false,
            ),
            Some(Destination::DatasetLabel(case)) => (
                RawDatasetKeys::imported(&id("dataset", &case.dataset)?)
                    .label(&id("case_id", &case.case_id)?),
                true,
            ),
            Some(Destination::VolumeId(volume_id)) => {
                (volume(&id("volume_id", &volume_id)?), false)
            }
            None => return Err(Error::InvalidArgument("destination is required".into())),
        };
        let limit = self.limits.max_bytes;
        if start.total_size_bytes == 0 || start.total_size_bytes > limit {
            return Err(Error::InvalidArgument(format!(
                "total_size_bytes must be 1 to {limit}, not {}",
                start.total_size_bytes
            )));
        }
        let expected = start.total_size_bytes as usize;
        let mut data = Vec::with_capacity(expected);
        while let Some(message) = upload.next().await {
            let message = message.map_err(|s| Error::InvalidArgument(s.message().to_owned()))?;
            match message.message {
                Some(Message::Chunk(chunk)) => {
                    if data.len() + chunk.len() > expected {
                        return Err(Error::InvalidArgument(format!(
                            "the upload is larger than its declared {expected} bytes"
                        )));
                    }
                    data.extend_from_slice(&chunk);
                }
                Some(Message::Start(_)) | None => {
                    return Err(Error::InvalidArgument(
                        "only chunks may follow start".into(),
                    ));
                }
            }
        }
        if data.len() != expected {
            return Err(Error::InvalidArgument(format!(
                "the upload ended after {} of {expected} bytes",
                data.len()
            )));
        }
        if !start.sha256.is_empty() && !start.sha256.eq_ignore_ascii_case(&sha256_hex(&data)) {
            return Err(Error::InvalidArgument(
                "the upload's SHA-256 does not match".into(),
            ));
        }
        // Only a readable volume is stored.
        let limits = self.limits;
        let (data, geometry) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let geometry = if is_label {
                read_labels(&data, &limits)?.geometry
            } else {
                read_ct(&data, &limits)?.geometry
            };
            Ok((data, geometry))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let written = self.storage.put(&key, Bytes::from(data)).await?;
        Ok(UploadVolumeResponse {
            volume: Some(ObjectRef {
                key: written.key.to_string(),
                etag: written.etag.unwrap_or_default(),
                size_bytes: written.size,
            }),
            geometry: Some(geometry_to_proto(&geometry)),
        })
    }
}
