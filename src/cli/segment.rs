//! `abdoseg segment IN OUT [--model M]`: a CT volume from a local file to a label map in a
//! local file, through the inference service's SegmentStream — a running server's
//! (`--url`), or the services started in this process over the local store.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use abdoseg_protos::inference::v1::{
    SegmentOptions, SegmentStreamRequest, SegmentStreamStart,
    inference_service_client::InferenceServiceClient, segment_stream_request::Message,
    segment_stream_response::Message as Reply,
};
use abdoseg_server::{HostOptions, config::StoreArgs};
use abdoseg_storage::Storage;
use anyhow::Context;
use tokio::net::TcpListener;

use crate::stack::{self, Role, StackConfig};

#[derive(Debug, clap::Args)]
pub struct SegmentArgs {
    /// The CT volume (.nii or .nii.gz).
    input: PathBuf,
    /// Where to write the label map; `.gz` compresses it.
    output: PathBuf,
    /// A model id, or `latest`.
    #[arg(long, default_value = "latest")]
    model: String,
    /// Keep every connected component instead of the largest per organ.
    #[arg(long)]
    all_components: bool,
    /// A running server; without it the services start in this process.
    #[arg(long, env = "ABDOSEG_URL")]
    url: Option<String>,
    /// The store of the in-process services (where the models are).
    #[command(flatten)]
    store: StoreArgs,
}

const CHUNK: usize = 1 << 20;

pub async fn run(args: SegmentArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let (url, local) = match &args.url {
        Some(url) => (url.clone(), None),
        None => {
            let config = args.store.store_config()?;
            let storage = Storage::open(&config).context("cannot open the object store")?;
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let stack = stack::spawn(
                listener,
                StackConfig {
                    // Inference alone: no training jobs resumed from the store here.
                    role: Role::Inference,
                    storage,
                    peers: Default::default(),
                    max_message_bytes: 16 << 20,
                    host: HostOptions {
                        shutdown_grace: Duration::from_secs(5),
                        shutdown_delay: Duration::ZERO,
                    },
                    preprocess_workers: 1,
                    training_jobs: 1,
                    inference: Default::default(),
                    default_model: None,
                    metrics: Default::default(),
                    requests: Default::default(),
                },
            )?;
            (stack.url(), Some(stack))
        }
    };
    let mut client = InferenceServiceClient::new(super::connect(&url).await?)
        .max_decoding_message_size(64 << 20);
    let gzip_output = args.output.extension().is_some_and(|e| e == "gz");
    let mut messages = vec![SegmentStreamRequest {
        message: Some(Message::Start(SegmentStreamStart {
            model_id: args.model.clone(),
            options: Some(SegmentOptions {
                keep_largest_components: Some(!args.all_components),
                batch_size: 0,
            }),
            total_size_bytes: bytes.len() as u64,
            gzipped: bytes.starts_with(&[0x1f, 0x8b]),
            gzip_output,
        })),
    }];
    messages.extend(bytes.chunks(CHUNK).map(|chunk| SegmentStreamRequest {
        message: Some(Message::Chunk(chunk.to_vec())),
    }));
    let mut replies = client
        .segment_stream(tokio_stream::iter(messages))
        .await?
        .into_inner();
    let mut label_map = Vec::new();
    let mut summary = None;
    while let Some(reply) = replies.message().await? {
        match reply.message {
            Some(Reply::Chunk(chunk)) => label_map.extend_from_slice(&chunk),
            Some(Reply::Summary(s)) => summary = Some(s),
            None => {}
        }
    }
    let summary = summary.context("the server sent no summary")?;
    std::fs::write(&args.output, &label_map)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!("model {}  →  {}", summary.model_id, args.output.display());
    if let Some(t) = &summary.timings {
        let secs = |d: &Option<prost_types::Duration>| {
            d.map_or(0.0, |d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
        };
        println!(
            "seconds: queued {:.2}  preprocess {:.2}  inference {:.2}  postprocess {:.2}  write {:.2}",
            secs(&t.queued),
            secs(&t.preprocess),
            secs(&t.inference),
            secs(&t.postprocess),
            secs(&t.write)
        );
    }
    println!("organ       voxels    volume (mL)   mean HU");
    for organ in &summary.organs {
        let name = ["liver", "kidneys", "spleen", "pancreas"]
            .get((organ.organ - 2).max(0) as usize)
            .copied()
            .unwrap_or("?");
        println!(
            "{name:<9} {:>9}  {:>12.1}  {:>8.1}",
            organ.voxel_count, organ.volume_ml, organ.mean_hu
        );
    }
    if let Some(stack) = local {
        stack.stop().await?;
    }
    Ok(ExitCode::SUCCESS)
}
