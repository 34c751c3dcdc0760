//! `abdoseg phantom`: writes a synthetic abdomen dataset in the AbdomenCT-1K layout.

use std::{path::PathBuf, process::ExitCode};

use abdoseg_imaging::{
    CLASS_NAMES,
    nifti::{ReadLimits, read_ct, read_labels_on, write_i16, write_labels},
    phantom::{
        Center, Grid, Style, Template, case_file_names,
        difficulty::{best_interval, hu_statistics},
        generate_case, template_variant,
    },
};
use abdoseg_storage::{Id, Storage, StoreConfig, keys::RawDatasetKeys};
use anyhow::Context;
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};

/// How phantoms are made ([`Style`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PhantomStyle {
    Full,
    RandomLook,
    Earlier,
}

impl PhantomStyle {
    /// The raw dataset quickstart writes phantoms of this style into (one per style, so
    /// phantoms made before a style changed are never mixed with new ones).
    pub fn dataset_name(self) -> &'static str {
        match self {
            Self::Full => "phantoms-full",
            Self::RandomLook => "phantoms-random-look",
            Self::Earlier => "phantoms-earlier",
        }
    }

    /// Site `index` of a dataset made with `seed`, making phantoms in this style.
    pub fn center(self, seed: u64, index: usize) -> Center {
        Center::new(seed, index).with_style(match self {
            Self::Full => Style::Full,
            Self::RandomLook => Style::RandomLook,
            Self::Earlier => Style::Earlier,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct PhantomArgs {
    /// Number of cases.
    #[arg(long, default_value_t = 20)]
    cases: usize,
    /// Seed: the same seed writes the same dataset, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scanner sites the cases are spread over (noise, calibration).
    #[arg(long, default_value_t = 3)]
    centers: usize,
    /// `full`: each case's look drawn (contrast phase, every structure's HU, noise, blur,
    /// slice averaging, offset field) and the organs' surroundings (psoas, gallbladder,
    /// adrenals, arms, table, cartilage, lesions), docs/imaging.md; `random-look`: drawn
    /// looks without the surroundings; `earlier`: phantoms as before both, for comparisons.
    #[arg(long, value_enum, default_value = "full")]
    style: PhantomStyle,
    /// Output folder; `images/` and `labels/` are created in it.
    #[arg(long, required_unless_present = "store")]
    out: Option<PathBuf>,
    /// Also (or instead) write into an object store (`file://`, `s3://`), as `raw/DATASET`.
    #[arg(long, requires = "dataset")]
    store: Option<String>,
    /// Name of the raw dataset in the store.
    #[arg(long, requires = "store")]
    dataset: Option<String>,
    /// Fix the grid instead of drawing one per case: pixels per side of a slice
    /// (with --slices, --spacing and --thickness), e.g. 512 for benchmark volumes.
    #[arg(long, requires_all = ["slices", "spacing", "thickness"])]
    matrix: Option<usize>,
    #[arg(long)]
    slices: Option<usize>,
    /// In-plane pixel size, mm.
    #[arg(long)]
    spacing: Option<f32>,
    /// Slice thickness, mm.
    #[arg(long)]
    thickness: Option<f32>,
    /// Write variants of this real labelled CT (NIfTI) instead of parametric phantoms: its
    /// anatomy deformed and its intensities redrawn per case (docs/imaging.md).
    #[arg(long, requires = "template_labels", conflicts_with = "matrix")]
    template_image: Option<PathBuf>,
    /// The template's label map (AbdomenCT-1K classes) on the same grid.
    #[arg(long, requires = "template_image")]
    template_labels: Option<PathBuf>,
}

/// The real template of `--template-image`, if given.
fn read_template(args: &PhantomArgs) -> anyhow::Result<Option<Template>> {
    let (Some(image), Some(labels)) = (&args.template_image, &args.template_labels) else {
        return Ok(None);
    };
    let limits = ReadLimits::default();
    let read = |path: &PathBuf| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let ct = read_ct(&read(image)?, &limits).context("the template image is not a usable CT")?;
    let labels = read_labels_on(&ct.geometry, &read(labels)?, &limits)
        .context("the template labels are not a label map on the image's grid")?;
    Ok(Some(Template::new(ct, &labels)?))
}

pub async fn run(args: PhantomArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.cases >= 1, "--cases must be at least 1");
    anyhow::ensure!(args.centers >= 1, "--centers must be at least 1");
    if let Some(out) = &args.out {
        for dir in [out.join("images"), out.join("labels")] {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let store = match (&args.store, &args.dataset) {
        (Some(url), Some(name)) => {
            let storage = Storage::open(&StoreConfig::new(url.parse()?))?;
            Some((storage, RawDatasetKeys::imported(&Id::parse(name)?)))
        }
        _ => None,
    };
    let bar = ProgressBar::new(args.cases as u64).with_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} cases, {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("phantoms");
    let mut sums = [(0u64, 0f64, 0f64); CLASS_NAMES.len()];
    // Mean over cases of the best single-HU-interval IoU: what thresholding can reach.
    let mut threshold_iou = [0f64; CLASS_NAMES.len()];
    let template = read_template(&args)?;
    for index in 1..=args.cases {
        let center = args.style.center(args.seed, (index - 1) % args.centers);
        let grid = args.matrix.map(|matrix| Grid {
            matrix,
            slices: args.slices.unwrap_or(1),
            spacing: args.spacing.unwrap_or(1.0),
            thickness: args.thickness.unwrap_or(1.0),
        });
        let case = match &template {
            Some(template) => template_variant(template, args.seed, index, center)?,
            None => generate_case(args.seed, index, center, grid)?,
        };
        let (image_name, label_name) = case_file_names(index);
        let image = write_i16(&case.image, true)?;
        let labels = write_labels(&case.labels, true)?;
        if let Some(out) = &args.out {
            std::fs::write(out.join("images").join(&image_name), &image)
                .with_context(|| format!("cannot write {image_name}"))?;
            std::fs::write(out.join("labels").join(&label_name), &labels)
                .with_context(|| format!("cannot write {label_name}"))?;
        }
        if let Some((storage, keys)) = &store {
            let case_id = Id::parse(&format!("Case_{index:05}"))?;
            storage
                .put(&keys.image(&case_id), Bytes::from(image))
                .await?;
            storage
                .put(&keys.label(&case_id), Bytes::from(labels))
                .await?;
        }
        let stats = hu_statistics(case.image.data.iter(), case.labels.data.iter());
        for (total, (n, mean, std)) in sums.iter_mut().zip(stats) {
            let n_f = n as f64;
            total.0 += n;
            total.1 += mean * n_f;
            total.2 += (std * std + mean * mean) * n_f;
        }
        for (organ, iou) in threshold_iou.iter_mut().enumerate().skip(1) {
            *iou += best_interval(case.image.data.iter(), case.labels.data.iter(), organ as u8).iou
                / args.cases as f64;
        }
        bar.inc(1);
    }
    bar.finish();
    let mut places = Vec::new();
    if let Some(out) = &args.out {
        places.push(out.display().to_string());
    }
    if let (Some(url), Some(name)) = (&args.store, &args.dataset) {
        places.push(format!("{url} as raw/{name}"));
    }
    println!("wrote {} cases to {}", args.cases, places.join(" and "));
    println!(
        "{:<11} {:>12} {:>9} {:>8} {:>14}",
        "class", "voxels", "mean HU", "std HU", "threshold IoU"
    );
    for ((name, (n, sum, sq)), iou) in CLASS_NAMES.iter().zip(sums).zip(threshold_iou) {
        if n == 0 {
            continue;
        }
        let mean = sum / n as f64;
        let std = (sq / n as f64 - mean * mean).max(0.0).sqrt();
        let iou = if iou > 0.0 {
            format!("{iou:.3}")
        } else {
            "—".to_owned()
        };
        println!("{name:<11} {n:>12} {mean:>9.1} {std:>8.1} {iou:>14}");
    }
    Ok(ExitCode::SUCCESS)
}
