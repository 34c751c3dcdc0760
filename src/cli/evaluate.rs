//! `abdoseg evaluate PRED GT`: one predicted label map against its ground truth, on
//! this machine, printed as a table or as JSON.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use abdoseg_imaging::nifti::{ReadLimits, read_labels};
use abdoseg_metrics::measures::{ClassEvaluation, NSD_TOLERANCE_MM, evaluate};
use anyhow::Context;
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// Predicted label map (.nii or .nii.gz, classes 0–4).
    prediction: PathBuf,
    /// Ground-truth label map on the same grid.
    ground_truth: PathBuf,
    /// Print JSON (undefined values are null) instead of a table.
    #[arg(long)]
    json: bool,
    /// Overlap metrics only: skip HD95 and NSD.
    #[arg(long)]
    no_surface: bool,
}

#[derive(Serialize)]
struct ClassOutput<'a> {
    name: &'static str,
    nsd_tolerance_mm: Option<f64>,
    #[serde(flatten)]
    metrics: &'a ClassEvaluation,
}

#[derive(Serialize)]
struct Output<'a> {
    /// Voxel spacing along the file's i, j, k axes in mm.
    spacing_mm: [f32; 3],
    shape: [usize; 3],
    classes: Vec<ClassOutput<'a>>,
    seconds: f64,
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<abdoseg_imaging::Volume<u8>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    read_labels(&bytes, &ReadLimits::default())
        .with_context(|| format!("the {what} {} is not a usable label map", path.display()))
}

fn show(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"))
}

pub fn run(args: EvaluateArgs) -> anyhow::Result<ExitCode> {
    let prediction = read(&args.prediction, "prediction")?;
    let truth = read(&args.ground_truth, "ground truth")?;
    let started = Instant::now();
    let case = evaluate(&prediction, &truth, !args.no_surface)?;
    let seconds = started.elapsed().as_secs_f64();
    let classes: Vec<ClassOutput<'_>> = case
        .classes
        .iter()
        .map(|metrics| ClassOutput {
            name: metrics.name(),
            nsd_tolerance_mm: NSD_TOLERANCE_MM[usize::from(metrics.class)],
            metrics,
        })
        .collect();
    if args.json {
        let output = Output {
            spacing_mm: truth.geometry.spacing(),
            shape: truth.geometry.shape(),
            classes,
            seconds,
        };
        println!("{}", serde_json::to_string_pretty(&output)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<11} {:>7} {:>7} {:>9} {:>7} {:>10} {:>9} {:>7} {:>11} {:>11} {:>11}",
        "class", "IoU", "Dice", "precision", "recall", "HD95 mm", "NSD", "NSD τ", "TP", "FP", "FN"
    );
    for c in &classes {
        let m = c.metrics;
        println!(
            "{:<11} {:>7} {:>7} {:>9} {:>7} {:>10} {:>9} {:>7} {:>11} {:>11} {:>11}",
            c.name,
            show(m.iou, 4),
            show(m.dice, 4),
            show(m.precision, 4),
            show(m.recall, 4),
            show(m.hd95_mm, 2),
            show(m.nsd, 4),
            show(c.nsd_tolerance_mm, 0),
            m.true_positives,
            m.false_positives,
            m.false_negatives,
        );
    }
    println!("(— undefined: see docs/metrics.md; evaluated in {seconds:.2} s)");
    Ok(ExitCode::SUCCESS)
}
