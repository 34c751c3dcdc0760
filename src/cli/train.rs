//! `abdoseg train`, `abdoseg models` and `abdoseg jobs`: training through the training
//! service's gRPC API, with a live progress bar and a per-epoch table.

use std::process::ExitCode;

use abdoseg_protos::{
    common::v1::Device,
    training::v1::{
        Architecture, Augmentation, CancelJobRequest, ClassWeighting, EpochMetrics, GetJobRequest,
        JobState, ListJobsRequest, ListModelsRequest, Loss, Normalization, StartTrainingRequest,
        TrainingConfig, WatchJobRequest, training_service_client::TrainingServiceClient,
        watch_job_response::Event,
    },
};
use abdoseg_server::config::DEFAULT_LISTEN;
use indicatif::{ProgressBar, ProgressStyle};
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ArchitectureName {
    Unet1,
    Unet2,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum NormalizationName {
    None,
    Instance,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LossName {
    CeDice,
    Ce,
    Dice,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum WeightingName {
    None,
    InverseSqrt,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DeviceName {
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The prepared dataset (`abdoseg dataset list`).
    #[arg(long, required_unless_present = "watch")]
    dataset: Option<String>,
    /// A further prepared dataset whose every case joins the training slices (repeat for
    /// more), e.g. variants of a real CT; same preprocessing as --dataset.
    #[arg(long = "extra-dataset")]
    extra_datasets: Vec<String>,
    /// A prepared dataset of real cases scored after every epoch beside the validation
    /// split (never choosing the best epoch).
    #[arg(long)]
    real_validation: Option<String>,
    /// Follow an existing job instead of starting one.
    #[arg(long, conflicts_with = "dataset")]
    watch: Option<String>,
    #[arg(long, value_enum, default_value = "unet1")]
    architecture: ArchitectureName,
    #[arg(long, default_value_t = 5)]
    depth: u32,
    /// Instance norm after each 3×3 conv (the default), or none as in the study.
    #[arg(long, value_enum, default_value = "instance")]
    normalization: NormalizationName,
    #[arg(long, default_value_t = 16)]
    base_filters: u32,
    /// Mini-batch size (the study used 30).
    #[arg(long, default_value_t = 30)]
    batch_size: u32,
    #[arg(long, default_value_t = 50)]
    epochs: u32,
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    #[arg(long, value_enum, default_value = "ce-dice")]
    loss: LossName,
    #[arg(long, value_enum, default_value = "none")]
    class_weighting: WeightingName,
    /// Share of every batch drawn from slices with the rarest organs (pancreas first).
    #[arg(long, default_value_t = 0.3)]
    oversampling: f32,
    /// Train without rotations, scaling, intensity jitter and noise.
    #[arg(long)]
    no_augmentation: bool,
    /// Slices per epoch; 0: the whole training split.
    #[arg(long, default_value_t = 0)]
    slices_per_epoch: u32,
    /// Stop after this many epochs without a better validation IoU; 0: never.
    #[arg(long, default_value_t = 0)]
    patience: u32,
    /// 2.5D input: axial slices per input (odd; 1 is 2D), --context-step-mm apart.
    #[arg(long, default_value_t = 1)]
    context_slices: u32,
    /// Distance between the slices of a 2.5D input, mm (quickstart's default).
    #[arg(long, default_value_t = 5.0)]
    context_step_mm: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceName,
    /// Name of the job and its model.
    #[arg(long, default_value = "")]
    name: String,
    /// Print the job id and return without watching.
    #[arg(long)]
    detach: bool,
    /// The server's URL.
    #[arg(long, env = "ABDOSEG_URL", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    url: String,
}

#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// The server's URL.
    #[arg(long, env = "ABDOSEG_URL", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    url: String,
}

#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    /// Cancel this job instead of listing.
    #[arg(long)]
    cancel: Option<String>,
    /// The server's URL.
    #[arg(long, env = "ABDOSEG_URL", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    url: String,
}

pub async fn client(url: &str) -> anyhow::Result<TrainingServiceClient<Channel>> {
    Ok(TrainingServiceClient::new(super::connect(url).await?).max_decoding_message_size(64 << 20))
}

impl TrainArgs {
    fn config(&self, dataset_id: String) -> TrainingConfig {
        TrainingConfig {
            dataset_id,
            architecture: match self.architecture {
                ArchitectureName::Unet1 => Architecture::Unet1,
                ArchitectureName::Unet2 => Architecture::Unet2,
            } as i32,
            depth: self.depth,
            base_filters: self.base_filters,
            preprocessing: None,
            batch_size: self.batch_size,
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            loss: match self.loss {
                LossName::CeDice => Loss::CeDice,
                LossName::Ce => Loss::CrossEntropy,
                LossName::Dice => Loss::Dice,
            } as i32,
            class_weighting: match self.class_weighting {
                WeightingName::None => ClassWeighting::None,
                WeightingName::InverseSqrt => ClassWeighting::InverseSqrtFrequency,
            } as i32,
            class_weights: Vec::new(),
            foreground_oversampling: self.oversampling,
            augmentation: self.no_augmentation.then(Augmentation::default),
            seed: self.seed,
            device: match self.device {
                DeviceName::Auto => Device::Auto,
                DeviceName::Cpu => Device::Cpu,
                DeviceName::Cuda => Device::Cuda,
            } as i32,
            early_stopping_patience: self.patience,
            name: self.name.clone(),
            slices_per_epoch: self.slices_per_epoch,
            normalization: match self.normalization {
                NormalizationName::None => Normalization::None,
                NormalizationName::Instance => Normalization::Instance,
            } as i32,
            extra_training_dataset_ids: self.extra_datasets.clone(),
            real_validation_dataset_id: self.real_validation.clone().unwrap_or_default(),
            context_slices: self.context_slices,
            context_step_mm: self.context_step_mm,
        }
    }
}

pub async fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let mut client = client(&args.url).await?;
    let job_id = match (&args.watch, &args.dataset) {
        (Some(job_id), _) => job_id.clone(),
        (None, Some(dataset)) => {
            let job = client
                .start_training(StartTrainingRequest {
                    config: Some(args.config(dataset.clone())),
                })
                .await?
                .into_inner()
                .job
                .ok_or_else(|| anyhow::anyhow!("the server returned no job"))?;
            println!("job {}", job.job_id);
            job.job_id
        }
        (None, None) => anyhow::bail!("give --dataset to start a job or --watch JOB to follow one"),
    };
    if args.detach {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(match watch(&mut client, job_id).await? {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    })
}

const HEADER: &str = "epoch  train loss  val loss   liver  kidney  spleen  pancreas   mean    time";

/// One epoch's row; with a real validation dataset, its IoU follows (liver, kidney,
/// spleen, pancreas; `—` for an organ the real cases lack).
fn row(m: &EpochMetrics, best: bool) -> String {
    let iou = |c: usize| m.validation.get(c).map_or(f64::NAN, |v| v.iou);
    let real = if m.real_validation.is_empty() {
        String::new()
    } else {
        let cells: Vec<String> = (1..5)
            .map(|c| match m.real_validation.get(c) {
                Some(v) if v.true_positives + v.false_negatives > 0 => format!("{:.3}", v.iou),
                _ => "—".to_owned(),
            })
            .collect();
        format!("  real {}", cells.join(" "))
    };
    format!(
        "{:>5}  {:>10.4}  {:>8.4}  {:>6.3}  {:>6.3}  {:>6.3}  {:>8.3}  {:>5.3}  {:>5.0}s{}{real}",
        m.epoch,
        m.train_loss,
        m.validation_loss,
        iou(1),
        iou(2),
        iou(3),
        iou(4),
        m.mean_foreground_validation_iou,
        m.duration
            .map_or(0.0, |d| d.seconds as f64 + f64::from(d.nanos) / 1e9),
        if best { "  *" } else { "" }
    )
}

/// Prints a line above the bar, and also when the bar is hidden (output not a terminal),
/// which `ProgressBar::println` would swallow.
fn say(bar: &ProgressBar, line: &str) {
    bar.suspend(|| println!("{line}"));
}

/// Follows a job to its end: a bar over each epoch's batches, a table row per epoch.
/// Returns the registered model, or `None` when the job was cancelled or the stream ended
/// first (the job goes on in the service).
pub async fn watch(
    client: &mut TrainingServiceClient<Channel>,
    job_id: String,
) -> anyhow::Result<Option<String>> {
    let job = client
        .get_job(GetJobRequest {
            job_id: job_id.clone(),
        })
        .await?
        .into_inner()
        .job
        .ok_or_else(|| anyhow::anyhow!("the server returned no job"))?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "epoch {prefix:>3} [{bar:40}] {pos}/{len} batches  loss {msg}  {elapsed}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    say(&bar, HEADER);
    let mut best = 0.0;
    for m in &job.history {
        let better = m.mean_foreground_validation_iou > best;
        best = f64::max(best, m.mean_foreground_validation_iou);
        say(&bar, &row(m, better));
    }
    let mut events = client
        .watch_job(WatchJobRequest { job_id })
        .await?
        .into_inner();
    while let Some(response) = events.message().await? {
        match response.event {
            Some(Event::BatchProgress(p)) => {
                bar.set_prefix(p.epoch.to_string());
                bar.set_length(u64::from(p.batches_total));
                bar.set_position(u64::from(p.batch));
                bar.set_message(format!("{:.4}", p.loss));
            }
            Some(Event::EpochFinished(m)) => {
                let better = m.mean_foreground_validation_iou > best;
                best = f64::max(best, m.mean_foreground_validation_iou);
                say(&bar, &row(&m, better));
            }
            Some(Event::StateChanged(state)) => {
                if state == JobState::Cancelled as i32 {
                    bar.abandon_with_message("cancelled");
                    return Ok(None);
                }
                if state == JobState::Queued as i32 {
                    bar.set_message("queued");
                }
            }
            Some(Event::Finished(f)) => {
                bar.finish_and_clear();
                println!("model {} (best epoch {})", f.model_id, f.best_epoch);
                return Ok(Some(f.model_id));
            }
            Some(Event::Failed(f)) => {
                bar.abandon();
                anyhow::bail!("training failed: {}", f.error);
            }
            Some(Event::CheckpointSaved(_)) | None => {}
        }
    }
    bar.abandon();
    println!("the server stopped streaming; the job goes on (abdoseg train --watch ID)");
    Ok(None)
}

pub async fn models(args: ModelsArgs) -> anyhow::Result<ExitCode> {
    let mut client = client(&args.url).await?;
    let models = client
        .list_models(ListModelsRequest::default())
        .await?
        .into_inner()
        .models;
    if models.is_empty() {
        println!("no models yet (abdoseg train --dataset ID)");
    }
    for m in models {
        let config = m.config.unwrap_or_default();
        println!(
            "{}  {}  dataset {}  depth {} base {}  best epoch {}  {} parameters",
            m.model_id,
            m.name,
            m.dataset_id,
            config.depth,
            config.base_filters,
            m.best_epoch,
            m.parameter_count
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn jobs(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let mut client = client(&args.url).await?;
    if let Some(job_id) = args.cancel {
        let job = client
            .cancel_job(CancelJobRequest { job_id })
            .await?
            .into_inner()
            .job
            .unwrap_or_default();
        println!(
            "{}  {:?}",
            job.job_id,
            JobState::try_from(job.state).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for job in client
        .list_jobs(ListJobsRequest::default())
        .await?
        .into_inner()
        .jobs
    {
        println!(
            "{}  {:<10}  epochs {:>4}  best {:>4}  {}{}",
            job.job_id,
            format!("{:?}", JobState::try_from(job.state).unwrap_or_default()),
            job.epochs_done,
            job.best_epoch,
            job.model_id,
            job.error
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Finds the job an earlier run started for `config` (one `same` accepts, not failed or
/// cancelled) and follows it — resuming it if it had not finished — or starts one. Returns
/// the model, or `None` when the job ended without one.
pub async fn find_or_train(
    client: &mut TrainingServiceClient<Channel>,
    config: TrainingConfig,
    same: impl Fn(&TrainingConfig) -> bool,
) -> anyhow::Result<Option<String>> {
    let jobs = client
        .list_jobs(ListJobsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .jobs;
    let earlier = jobs.into_iter().find(|job| {
        job.config.as_ref().is_some_and(&same)
            && ![JobState::Failed as i32, JobState::Cancelled as i32].contains(&job.state)
    });
    let job_id = match earlier {
        Some(job) if job.state == JobState::Succeeded as i32 => {
            println!("job {} finished before: model {}", job.job_id, job.model_id);
            return Ok(Some(job.model_id));
        }
        Some(job) => {
            println!(
                "resuming job {} after epoch {}",
                job.job_id, job.epochs_done
            );
            job.job_id
        }
        None => {
            let job = client
                .start_training(StartTrainingRequest {
                    config: Some(config),
                })
                .await?
                .into_inner()
                .job
                .ok_or_else(|| anyhow::anyhow!("the training service returned no job"))?;
            println!("job {}", job.job_id);
            job.job_id
        }
    };
    watch(client, job_id).await
}
