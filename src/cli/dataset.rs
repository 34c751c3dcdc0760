//! `abdoseg dataset import|prepare|show|list`: datasets through the preprocessing
//! service's gRPC API, with progress bars.

use std::{path::Path, process::ExitCode};

use abdoseg_protos::{
    common::v1::{ClaheParameters, HeParameters, PreprocessingConfig, Split},
    preprocessing::v1::{
        DatasetCase, GetManifestRequest, ListDatasetsRequest, PrepareDatasetRequest,
        UploadDestination, UploadVolumeRequest, UploadVolumeStart, prepare_dataset_response::Event,
        preprocessing_service_client::PreprocessingServiceClient, upload_destination::Destination,
        upload_volume_request::Message,
    },
};
use abdoseg_server::config::DEFAULT_LISTEN;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tonic::transport::Channel;

use super::preprocess::SchemeName;

#[derive(Debug, clap::Args)]
pub struct DatasetArgs {
    #[command(subcommand)]
    command: DatasetCommand,
    /// The server's URL.
    #[arg(long, global = true, env = "ABDOSEG_URL", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    url: String,
}

#[derive(Debug, clap::Subcommand)]
enum DatasetCommand {
    /// Upload a local AbdomenCT-1K-style folder (images/, labels/) as raw/NAME.
    Import {
        dir: std::path::PathBuf,
        #[arg(long)]
        name: String,
    },
    /// Split, preprocess and shard a raw dataset in the store.
    Prepare {
        /// Store prefix of the raw dataset, e.g. raw/NAME.
        #[arg(long)]
        source: String,
        #[arg(long, value_enum, default_value = "he")]
        scheme: SchemeName,
        #[arg(long)]
        threshold: Option<u32>,
        #[arg(long)]
        tiles: Option<u32>,
        #[arg(long)]
        clip_limit: Option<f32>,
        /// Model input size (square), pixels.
        #[arg(long, default_value_t = 128)]
        size: u32,
        /// The model's pixel size in mm: slices are resampled to it over a field of view of
        /// size × pixel size centred on the body. 0 stretches every slice to the size.
        #[arg(long, default_value_t = 0.0)]
        pixel_size_mm: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Print a prepared dataset's manifest summary.
    Show { dataset_id: String },
    /// List prepared datasets.
    List,
}

pub async fn client(url: &str) -> anyhow::Result<PreprocessingServiceClient<Channel>> {
    Ok(PreprocessingServiceClient::new(super::connect(url).await?)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(16 << 20))
}

fn bar(len: u64, template: &str) -> ProgressBar {
    ProgressBar::new(len).with_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    )
}

pub async fn run(args: DatasetArgs) -> anyhow::Result<ExitCode> {
    let mut client = client(&args.url).await?;
    match args.command {
        DatasetCommand::Import { dir, name } => import(&mut client, &dir, &name).await,
        DatasetCommand::Prepare {
            source,
            scheme,
            threshold,
            tiles,
            clip_limit,
            size,
            pixel_size_mm,
            seed,
        } => {
            let config = PreprocessingConfig {
                scheme: scheme.wire() as i32,
                he: threshold.map(|threshold| HeParameters { threshold }),
                clahe: (tiles.is_some() || clip_limit.is_some()).then(|| ClaheParameters {
                    tiles: tiles.unwrap_or(8),
                    clip_limit: clip_limit.unwrap_or(2.0),
                }),
                slice_width: size,
                slice_height: size,
                target_spacing_mm: pixel_size_mm,
                ..PreprocessingConfig::default()
            };
            prepare(&mut client, source, config, seed).await
        }
        DatasetCommand::Show { dataset_id } => show(&mut client, dataset_id).await,
        DatasetCommand::List => {
            let response = client
                .list_datasets(ListDatasetsRequest::default())
                .await?
                .into_inner();
            for d in response.datasets {
                println!(
                    "{}  {} cases  from {}",
                    d.dataset_id, d.case_count, d.source_prefix
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Uploads one file in 1 MiB chunks.
pub async fn upload_file(
    client: &mut PreprocessingServiceClient<Channel>,
    path: &Path,
    destination: Destination,
) -> anyhow::Result<()> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let start = UploadVolumeRequest {
        message: Some(Message::Start(UploadVolumeStart {
            destination: Some(UploadDestination {
                destination: Some(destination),
            }),
            total_size_bytes: data.len() as u64,
            sha256: abdoseg_dataset::sha256_hex(&data),
        })),
    };
    let chunks: Vec<UploadVolumeRequest> = std::iter::once(start)
        .chain(data.chunks(1 << 20).map(|c| UploadVolumeRequest {
            message: Some(Message::Chunk(c.to_vec())),
        }))
        .collect();
    client
        .upload_volume(tokio_stream::iter(chunks))
        .await
        .with_context(|| format!("uploading {}", path.display()))?;
    Ok(())
}

/// Uploads an AbdomenCT-1K-style folder (`images/`, `labels/`) as `raw/{name}`.
pub async fn import(
    client: &mut PreprocessingServiceClient<Channel>,
    dir: &Path,
    name: &str,
) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for (folder, is_label) in [("images", false), ("labels", true)] {
        let path = dir.join(folder);
        for entry in
            std::fs::read_dir(&path).with_context(|| format!("cannot list {}", path.display()))?
        {
            let path = entry?.path();
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let stem = file
                .strip_suffix(".nii.gz")
                .or_else(|| file.strip_suffix(".nii"));
            let case = match (stem, is_label) {
                (Some(stem), false) => stem.strip_suffix("_0000").map(str::to_owned),
                (Some(stem), true) => Some(stem.to_owned()),
                (None, _) => None,
            };
            if let Some(case) = case {
                files.push((path, case, is_label));
            }
        }
    }
    anyhow::ensure!(!files.is_empty(), "no NIfTI cases under {}", dir.display());
    files.sort();
    let progress = bar(
        files.len() as u64,
        "{msg:>10} [{bar:30}] {pos}/{len} files, {elapsed}",
    );
    progress.set_message("uploading");
    for (path, case, is_label) in files {
        let target = DatasetCase {
            dataset: name.to_owned(),
            case_id: case,
        };
        let destination = if is_label {
            Destination::DatasetLabel(target)
        } else {
            Destination::DatasetImage(target)
        };
        upload_file(client, &path, destination).await?;
        progress.inc(1);
    }
    progress.finish();
    println!("imported into raw/{name}");
    Ok(ExitCode::SUCCESS)
}

async fn prepare(
    client: &mut PreprocessingServiceClient<Channel>,
    source: String,
    config: PreprocessingConfig,
    seed: u64,
) -> anyhow::Result<ExitCode> {
    let dataset_id = prepare_dataset(client, source, config, seed).await?;
    println!("dataset {dataset_id}");
    Ok(ExitCode::SUCCESS)
}

/// Prepares a raw dataset with a progress bar; returns the dataset's id. A dataset
/// prepared before is found, not prepared again; an interrupted one resumes.
pub async fn prepare_dataset(
    client: &mut PreprocessingServiceClient<Channel>,
    source: String,
    config: PreprocessingConfig,
    seed: u64,
) -> anyhow::Result<String> {
    let mut events = client
        .prepare_dataset(PrepareDatasetRequest {
            source_prefix: source,
            preprocessing: Some(config),
            seed,
            ..PrepareDatasetRequest::default()
        })
        .await?
        .into_inner();
    let progress = bar(0, "{msg:>10} [{bar:30}] {pos}/{len} cases, {elapsed}");
    progress.set_message("preparing");
    let mut dataset_id = String::new();
    let mut failures = Vec::new();
    while let Some(event) = events.message().await? {
        progress.set_length(u64::from(event.cases_total));
        progress.set_position(u64::from(event.cases_done));
        dataset_id = event.dataset_id;
        if let Some(Event::CaseFailed(failed)) = event.event {
            failures.push(failed);
        }
    }
    progress.finish();
    for failed in &failures {
        eprintln!("skipped {}: {}", failed.case_id, failed.reason);
    }
    anyhow::ensure!(
        !dataset_id.is_empty(),
        "the preparation ended without a dataset"
    );
    Ok(dataset_id)
}

async fn show(
    client: &mut PreprocessingServiceClient<Channel>,
    dataset_id: String,
) -> anyhow::Result<ExitCode> {
    let manifest = client
        .get_manifest(GetManifestRequest { dataset_id })
        .await?
        .into_inner()
        .manifest
        .context("the server sent no manifest")?;
    println!(
        "dataset {}  (abdoseg {})",
        manifest.dataset_id, manifest.abdoseg_version
    );
    println!("source  {}", manifest.source_prefix);
    for split in [Split::Train, Split::Validation, Split::Test] {
        let cases: Vec<_> = manifest
            .cases
            .iter()
            .filter(|c| c.split == split as i32)
            .collect();
        let slices: usize = cases.iter().map(|c| c.slices.len()).sum();
        println!(
            "{:<10} {:>4} cases {:>6} slices",
            split
                .as_str_name()
                .trim_start_matches("SPLIT_")
                .to_lowercase(),
            cases.len(),
            slices
        );
    }
    for failed in &manifest.failed_cases {
        println!("failed     {}: {}", failed.case_id, failed.reason);
    }
    Ok(ExitCode::SUCCESS)
}
