//! The command line: `abdoseg serve …` runs services, `abdoseg health` checks them.

pub(crate) mod dataset;
mod evaluate;
mod experiment;
mod health;
pub(crate) mod phantom;
mod preprocess;
mod quickstart;
mod real_data;
pub(crate) mod report;
mod segment;
mod serve;
pub(crate) mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Segments the liver, kidneys, spleen and pancreas in abdominal CT.
#[derive(Debug, Parser)]
#[command(name = "abdoseg", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// From nothing to a trained, evaluated model and its report, on this machine: phantoms
    /// (or your folder), the HE variant, U-Net 1, the test split, the study's table.
    Quickstart(quickstart::QuickstartArgs),
    /// Run the study's grid (schemes × variants × depths, from a TOML file) through a
    /// running server into the study's comparison table.
    Experiment(experiment::ExperimentArgs),
    /// Serve all four services on one address, or one of them alone.
    Serve(serve::ServeArgs),
    /// Import, prepare and inspect datasets through the preprocessing service.
    Dataset(dataset::DatasetArgs),
    /// Ask a running server whether each service is SERVING.
    Health(health::HealthArgs),
    /// Write a synthetic abdomen dataset (AbdomenCT-1K layout) to a folder.
    Phantom(phantom::PhantomArgs),
    /// Preprocess one CT volume (window + scheme) and write it with the input's geometry.
    Preprocess(preprocess::PreprocessArgs),
    /// Train a U-Net on a prepared dataset through the training service, watching it live.
    Train(train::TrainArgs),
    /// List the registered models with their validation IoU.
    Models(train::ModelsArgs),
    /// List training jobs, or cancel one.
    Jobs(train::JobsArgs),
    /// Segment a CT volume file into a label map file with the input's exact geometry.
    Segment(segment::SegmentArgs),
    /// Compare a predicted label map file with its ground truth: IoU, Dice, HD95, NSD and more.
    Evaluate(evaluate::EvaluateArgs),
    /// Evaluate a model on a dataset split through the metrics service into a stored report.
    EvaluateModel(report::EvaluateModelArgs),
    /// Show a stored evaluation report (or list them), and copy it out of the store.
    Report(report::ReportArgs),
}

/// A channel to a running server.
async fn connect(url: &str) -> anyhow::Result<tonic::transport::Channel> {
    use anyhow::Context as _;
    tonic::transport::Channel::from_shared(url.to_owned())
        .with_context(|| format!("invalid server URL {url:?}"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach {url}"))
}

/// Parses the command line and runs the command on a Tokio runtime.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("abdoseg: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Quickstart(args) => quickstart::run(args).await,
            Command::Experiment(args) => experiment::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Dataset(args) => dataset::run(args).await,
            Command::Health(args) => health::run(args).await,
            Command::Phantom(args) => phantom::run(args).await,
            Command::Preprocess(args) => preprocess::run(args),
            Command::Train(args) => train::run(args).await,
            Command::Models(args) => train::models(args).await,
            Command::Jobs(args) => train::jobs(args).await,
            Command::Segment(args) => segment::run(args).await,
            Command::Evaluate(args) => evaluate::run(args),
            Command::EvaluateModel(args) => report::evaluate_model(args).await,
            Command::Report(args) => report::report(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("abdoseg: {error:#}");
            ExitCode::FAILURE
        }
    }
}
