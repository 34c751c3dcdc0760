//! `abdoseg quickstart`: from nothing to a trained, evaluated model and its report, on
//! this machine. The four services run in this process on loopback over the local store;
//! every step goes through their gRPC APIs. Every step finds what an earlier run left
//! (the raw data, the prepared dataset, the training job and its checkpoints, the report),
//! so Ctrl-C and the same command again resumes.

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use abdoseg_imaging::{
    nifti::{write_i16, write_labels},
    phantom::generate_case,
};
use abdoseg_protos::{
    common::v1::{Device, PreprocessingConfig, Split},
    metrics::v1::EvaluateModelRequest,
    training::v1::{
        ClassWeighting, GetModelRequest, Normalization, TrainingConfig,
        training_service_client::TrainingServiceClient,
    },
};
use abdoseg_server::{HostOptions, config::StoreArgs};
use abdoseg_storage::{Id, Storage, StoreLocation, keys::RawDatasetKeys};
use anyhow::Context;
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::net::TcpListener;

use crate::{
    cli::{dataset, phantom::PhantomStyle, preprocess::SchemeName, real_data, report, train},
    stack::{self, Role, StackConfig},
};

/// The name of quickstart's training jobs: a later run finds its job by it.
const JOB_NAME: &str = "quickstart";

#[derive(Debug, clap::Args)]
pub struct QuickstartArgs {
    /// An AbdomenCT-1K-style folder (`images/`, `labels/`) to use instead of phantoms.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Phantom cases to write (split 60/20/20 by patient).
    #[arg(long, default_value_t = 20)]
    cases: usize,
    /// How the phantoms are made: `full` (drawn looks and the organs' surroundings),
    /// `random-look` or `earlier`, the last two for comparisons (docs/imaging.md).
    #[arg(long, value_enum, default_value = "full")]
    phantoms: PhantomStyle,
    /// The intensity scheme after the HU window: `he` (the study's best), `none` (the
    /// window alone) or `clahe`. `zscore` takes its statistics per dataset, so it is for
    /// `abdoseg dataset prepare`, not for quickstart's mix of datasets.
    #[arg(long, value_enum, default_value = "he")]
    scheme: SchemeName,
    /// Model input size (square), pixels.
    #[arg(long, default_value_t = 96)]
    size: u32,
    /// The model's pixel size in mm: the field of view is size × pixel size, centred on the
    /// body, whatever the scanner's matrix (docs/benchmarks.md, "Real CT").
    #[arg(long, default_value_t = 4.0)]
    pixel_size_mm: f32,
    /// Training epochs, each of --slices-per-epoch slices: sized for two CPU cores.
    #[arg(long, default_value_t = 7)]
    epochs: u32,
    #[arg(long, default_value_t = 1000)]
    slices_per_epoch: u32,
    /// Real labelled CTs (an AbdomenCT-1K-style folder) used as templates: each gives
    /// --variants-per-template deformed, redrawn variants that join the training data
    /// (docs/quickstart.md). Defaults to the shared real case beside the checkout
    /// (`../shared/data/real-abdomen`) when that folder is there: on a real CT it never
    /// saw, the model trained with it scores far higher than the phantoms-only one
    /// (docs/benchmarks.md, "Real CT").
    #[arg(long)]
    templates: Option<PathBuf>,
    /// Train on the phantoms alone, without the default template.
    #[arg(long, conflicts_with = "templates")]
    no_templates: bool,
    #[arg(long, default_value_t = 20)]
    variants_per_template: usize,
    /// Real labelled CTs (an AbdomenCT-1K-style folder) scored after every epoch and
    /// printed beside the validation split; never trained on. With --no-templates it
    /// defaults to the shared real case beside the checkout
    /// (`../shared/data/real-abdomen`) when that folder is there.
    #[arg(long)]
    real_validation: Option<PathBuf>,
    /// Score no real cases while training, not even the default one.
    #[arg(long, conflicts_with = "real_validation")]
    no_real_validation: bool,
    /// Filters of the first level (doubling per level).
    #[arg(long, default_value_t = 8)]
    base_filters: u32,
    #[arg(long, default_value_t = 5)]
    depth: u32,
    /// 2.5D input: axial slices per input (odd; 1 is 2D), --context-step-mm apart. Three
    /// by default: on a real case it never saw, the 2.5D model found the liver and spleen
    /// where the 2D one of the same run did not (docs/benchmarks.md, "Real CT", rows J–K).
    #[arg(long, default_value_t = 3)]
    context_slices: u32,
    /// Distance between the slices of a 2.5D input, mm.
    #[arg(long, default_value_t = 5.0)]
    context_step_mm: f32,
    #[command(flatten)]
    store: StoreArgs,
}

impl QuickstartArgs {
    /// U-Net 1 with what made the pancreas learnable on the CPU (docs/benchmarks.md):
    /// instance norm, inverse-√frequency class weights, half of each batch from slices with
    /// the rarest organs.
    fn training(&self, datasets: &Datasets) -> TrainingConfig {
        TrainingConfig {
            dataset_id: datasets.main.clone(),
            extra_training_dataset_ids: datasets.templates.iter().cloned().collect(),
            real_validation_dataset_id: datasets.real_validation.clone().unwrap_or_default(),
            name: JOB_NAME.to_owned(),
            depth: self.depth,
            base_filters: self.base_filters,
            batch_size: 16,
            epochs: self.epochs,
            slices_per_epoch: self.slices_per_epoch,
            learning_rate: 3e-3,
            class_weighting: ClassWeighting::InverseSqrtFrequency as i32,
            foreground_oversampling: 0.5,
            normalization: Normalization::Instance as i32,
            augmentation: None, // the service's default augmentation
            device: Device::Auto as i32,
            seed: 1,
            context_slices: self.context_slices,
            context_step_mm: self.context_step_mm,
            ..TrainingConfig::default()
        }
    }

    /// The real templates: the ones named, else the shared real case when it is there.
    fn templates_dir(&self) -> Option<PathBuf> {
        if self.no_templates {
            return None;
        }
        self.templates.clone().or_else(shared_real_case)
    }

    /// The real cases to score while training: the ones named, else the shared real
    /// case when no templates could contain it and it is there.
    fn real_validation_dir(&self) -> Option<PathBuf> {
        if self.no_real_validation {
            return None;
        }
        self.real_validation.clone().or_else(|| {
            self.templates_dir()
                .is_none()
                .then(shared_real_case)
                .flatten()
        })
    }

    /// Whether `config` (as the service recorded it) is the job this run would start.
    fn same_job(&self, config: &TrainingConfig, datasets: &Datasets) -> bool {
        let wanted = self.training(datasets);
        config.name == JOB_NAME
            && config.dataset_id == wanted.dataset_id
            && config.extra_training_dataset_ids == wanted.extra_training_dataset_ids
            && config.real_validation_dataset_id == wanted.real_validation_dataset_id
            && (config.epochs, config.slices_per_epoch) == (self.epochs, self.slices_per_epoch)
            && (config.depth, config.base_filters) == (self.depth, self.base_filters)
            && config.context_slices.max(1) == self.context_slices.max(1)
            && (self.context_slices <= 1 || config.context_step_mm == self.context_step_mm)
    }
}

/// The shared real CT beside the checkout (`../shared/data/real-abdomen`), if it is there.
fn shared_real_case() -> Option<PathBuf> {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real-abdomen");
    shared.join("images").is_dir().then_some(shared)
}

/// The prepared datasets of a run: the main one (phantoms or `--data`), the template
/// variants and the real validation cases.
#[derive(Debug, Clone)]
struct Datasets {
    main: String,
    templates: Option<String>,
    real_validation: Option<String>,
}

/// A raw dataset name for the files of `dir`: their content digest, so other files never
/// reuse what these left in the store.
fn content_name(prefix: &str, dir: &std::path::Path) -> anyhow::Result<String> {
    let mut digest_input = Vec::new();
    for case in real_data::list_cases(dir)? {
        for path in [&case.image, &case.labels] {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            digest_input.extend_from_slice(abdoseg_dataset::sha256_hex(&bytes).as_bytes());
        }
    }
    Ok(format!(
        "{prefix}-{}",
        &abdoseg_dataset::sha256_hex(&digest_input)[..12]
    ))
}

/// The real validation cases' IoU at the model's best epoch (slices at model
/// resolution, every real case together).
async fn print_real_validation(
    training: &mut TrainingServiceClient<tonic::transport::Channel>,
    model_id: &str,
) -> anyhow::Result<()> {
    let model = training
        .get_model(GetModelRequest {
            model_id: model_id.to_owned(),
        })
        .await?
        .into_inner()
        .model
        .context("the training service returned no model")?;
    let Some(best) = model.history.iter().find(|m| m.epoch == model.best_epoch) else {
        return Ok(());
    };
    let cells: Vec<String> = ["liver", "kidney", "spleen", "pancreas"]
        .iter()
        .enumerate()
        .map(|(k, organ)| match best.real_validation.get(k + 1) {
            Some(m) if m.true_positives + m.false_negatives > 0 => format!("{organ} {:.3}", m.iou),
            _ => format!("{organ} —"),
        })
        .collect();
    println!(
        "\nreal validation cases (never trained on), IoU at model resolution, epoch {}: {}",
        model.best_epoch,
        cells.join(", ")
    );
    Ok(())
}

/// Prints a step's heading with the time since the run started.
fn step(started: Instant, n: u32, what: &str) {
    let seconds = started.elapsed().as_secs();
    println!("\n[{n}/5] {what}  ({}:{:02})", seconds / 60, seconds % 60);
}

/// Writes the phantoms the store lacks (a rerun writes none).
async fn write_phantoms(
    storage: &Storage,
    keys: &RawDatasetKeys,
    cases: usize,
    style: PhantomStyle,
) -> anyhow::Result<()> {
    let bar = ProgressBar::new(cases as u64).with_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} cases, {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("phantoms");
    for index in 1..=cases {
        let case_id = Id::parse(&format!("Case_{index:05}"))?;
        let (image_key, label_key) = (keys.image(&case_id), keys.label(&case_id));
        if !(storage.exists(&image_key).await? && storage.exists(&label_key).await?) {
            let case = generate_case(1, index, style.center(1, (index - 1) % 3), None)?;
            // The label first: a case counts once its image is there.
            storage
                .put(&label_key, Bytes::from(write_labels(&case.labels, true)?))
                .await?;
            storage
                .put(&image_key, Bytes::from(write_i16(&case.image, true)?))
                .await?;
        }
        bar.inc(1);
    }
    bar.finish();
    Ok(())
}

/// The whole run; returns the exit code once the report is printed.
async fn run_steps(
    args: &QuickstartArgs,
    storage: &Storage,
    url: &str,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    step(started, 1, "data");
    let source = match &args.data {
        Some(dir) => {
            let name = "quickstart-import";
            let mut client = dataset::client(url).await?;
            dataset::import(&mut client, dir, name).await?;
            format!("raw/{name}")
        }
        None => {
            anyhow::ensure!(
                args.cases >= 5,
                "--cases must be at least 5 (60/20/20 split)"
            );
            let keys = RawDatasetKeys::imported(&Id::parse(args.phantoms.dataset_name())?);
            write_phantoms(storage, &keys, args.cases, args.phantoms).await?;
            keys.prefix().to_string()
        }
    };
    let templates = match &args.templates_dir() {
        Some(dir) => {
            let name = format!(
                "{}-{}",
                content_name("templates", dir)?,
                args.variants_per_template
            );
            let keys = RawDatasetKeys::imported(&Id::parse(&name)?);
            let written =
                real_data::write_template_variants(storage, &keys, dir, args.variants_per_template)
                    .await?;
            println!("template variants: {written} written to {}", keys.prefix());
            Some(keys.prefix().to_string())
        }
        None => None,
    };
    let real_validation = match &args.real_validation_dir() {
        Some(dir) => {
            let name = content_name("real", dir)?;
            let mut client = dataset::client(url).await?;
            dataset::import(&mut client, dir, &name).await?;
            Some(format!("raw/{name}"))
        }
        None => None,
    };

    let scheme = match args.scheme {
        SchemeName::He => "the HE variant (the study's best scheme)",
        SchemeName::None => "the HU window alone",
        SchemeName::Clahe => "CLAHE",
        SchemeName::Zscore => "z-score",
    };
    step(
        started,
        2,
        &format!("prepare: {scheme}, axial slices, 60/20/20 by patient"),
    );
    let mut preprocessing = dataset::client(url).await?;
    let config = PreprocessingConfig {
        scheme: args.scheme.wire() as i32,
        slice_width: args.size,
        slice_height: args.size,
        target_spacing_mm: args.pixel_size_mm,
        ..PreprocessingConfig::default()
    };
    let dataset_id = dataset::prepare_dataset(&mut preprocessing, source, config, 1).await?;
    println!("dataset {dataset_id}");
    let mut prepare_other =
        async |source: Option<String>, what: &str| -> anyhow::Result<Option<String>> {
            let Some(source) = source else {
                return Ok(None);
            };
            let id = dataset::prepare_dataset(&mut preprocessing, source, config, 1).await?;
            println!("{what} dataset {id}");
            Ok(Some(id))
        };
    let datasets = Datasets {
        main: dataset_id.clone(),
        templates: prepare_other(templates, "template variants").await?,
        real_validation: prepare_other(real_validation, "real validation").await?,
    };

    step(
        started,
        3,
        "train: U-Net 1 on the CPU (or the GPU when there is one)",
    );
    let mut training = train::client(url).await?;
    let same = |c: &TrainingConfig| args.same_job(c, &datasets);
    let Some(model_id) =
        train::find_or_train(&mut training, args.training(&datasets), same).await?
    else {
        return Ok(ExitCode::FAILURE);
    };

    step(
        started,
        4,
        "evaluate on the test split through the inference service",
    );
    let mut metrics = report::client(url).await?;
    let request = EvaluateModelRequest {
        model_id: model_id.clone(),
        dataset_id,
        split: Split::Test as i32,
        surface_metrics: true,
        concurrency: 2,
        overlays: true,
    };
    let report = report::find_or_evaluate(&mut metrics, request).await?;

    step(started, 5, "report");
    report::print_table(&report);
    if datasets.real_validation.is_some() {
        print_real_validation(&mut training, &model_id).await?;
    } else if datasets.templates.is_some() {
        println!(
            "\nno real validation: the real templates are in the training data; score a real CT \
             the model never saw with `abdoseg segment` and `abdoseg evaluate` (or \
             tests/tools/score_real.py)"
        );
    }
    let html = report
        .html
        .as_ref()
        .map(|o| o.key.clone())
        .unwrap_or_default();
    let place = match storage.location() {
        StoreLocation::File(root) => root.join(&html).display().to_string(),
        other @ (StoreLocation::S3 { .. } | StoreLocation::Memory) => {
            format!("{html} in {}", other.to_url())
        }
    };
    println!("\nreport {}: {place}", report.report_id);
    let seconds = started.elapsed().as_secs();
    println!("done in {}:{:02}", seconds / 60, seconds % 60);
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: QuickstartArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.scheme != SchemeName::Zscore,
        "quickstart trains on several datasets (phantoms, template variants) and z-score \
         statistics are per dataset: use none, he or clahe here, or prepare datasets \
         yourself with `abdoseg dataset prepare --scheme zscore`"
    );
    // This process owns the store: it may clear what interrupted writes left.
    let store = args.store.store_config()?.as_owner();
    let storage = Storage::open(&store).context("cannot open the object store")?;
    println!("abdoseg quickstart over {}", store.location.to_url());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let running = stack::spawn(
        listener,
        StackConfig {
            role: Role::All,
            storage: storage.clone(),
            peers: Default::default(),
            max_message_bytes: 64 << 20,
            host: HostOptions {
                shutdown_grace: Duration::from_secs(30),
                shutdown_delay: Duration::ZERO,
            },
            preprocess_workers: 2,
            training_jobs: 1,
            inference: Default::default(),
            default_model: None,
            metrics: Default::default(),
            requests: Default::default(),
        },
    )?;
    let url = running.url();
    let outcome = tokio::select! {
        outcome = run_steps(&args, &storage, &url) => outcome,
        _ = abdoseg_server::wait_for_signal() => {
            println!("\nstopping: the training job pauses at its next batch (its last epoch is saved); run the same command to resume");
            Ok(ExitCode::from(130))
        }
    };
    running.stop().await?;
    outcome
}
