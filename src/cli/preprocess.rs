//! `abdoseg preprocess`: one CT volume through windowing and a scheme, written whole with
//! the input's geometry.

use std::{path::PathBuf, process::ExitCode};

use abdoseg_imaging::{
    intensity::{Clahe, DEFAULT_HE_THRESHOLD, HuWindow, Intensity, Scheme, ZScore},
    nifti::{ReadLimits, read_ct, write_ct_u8, write_f32},
    slices::{Preprocessed, preprocess_volume},
};
use abdoseg_protos::common::v1::IntensityScheme;
use anyhow::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemeName {
    None,
    He,
    Clahe,
    Zscore,
}

impl SchemeName {
    /// The scheme in the contracts.
    pub fn wire(self) -> IntensityScheme {
        match self {
            SchemeName::None => IntensityScheme::None,
            SchemeName::He => IntensityScheme::He,
            SchemeName::Clahe => IntensityScheme::Clahe,
            SchemeName::Zscore => IntensityScheme::Zscore,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct PreprocessArgs {
    /// Input CT (.nii or .nii.gz).
    input: PathBuf,
    /// Output (.nii or .nii.gz): uint8 for none/he/clahe, float32 for zscore.
    output: PathBuf,
    #[arg(long, value_enum)]
    scheme: SchemeName,
    /// HU window centre.
    #[arg(long, default_value_t = HuWindow::default().level, allow_hyphen_values = true)]
    window_level: f32,
    /// HU window width.
    #[arg(long, default_value_t = HuWindow::default().width)]
    window_width: f32,
    /// HE variant: windowed gray levels below this become 0 before equalization.
    #[arg(long, default_value_t = DEFAULT_HE_THRESHOLD)]
    threshold: u8,
    /// CLAHE: tiles per side.
    #[arg(long, default_value_t = Clahe::default().tiles)]
    tiles: usize,
    /// CLAHE: clip limit in OpenCV's units.
    #[arg(long, default_value_t = Clahe::default().clip_limit)]
    clip_limit: f32,
}

pub fn run(args: PreprocessArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let volume = read_ct(&bytes, &ReadLimits::default())
        .with_context(|| format!("{} is not a usable CT volume", args.input.display()))?;
    let scheme = match args.scheme {
        SchemeName::None => Scheme::None,
        SchemeName::He => Scheme::He {
            threshold: args.threshold,
        },
        SchemeName::Clahe => Scheme::Clahe(Clahe {
            tiles: args.tiles,
            clip_limit: args.clip_limit,
        }),
        // A single volume is its own dataset: statistics of its body voxels (> −500 HU).
        SchemeName::Zscore => {
            let body: Vec<f32> = volume
                .data
                .iter()
                .copied()
                .filter(|&v| v > -500.0)
                .collect();
            Scheme::ZScore(ZScore::from_samples(&body)?)
        }
    };
    let intensity = Intensity {
        window: HuWindow {
            level: args.window_level,
            width: args.window_width,
        },
        scheme,
    };
    let gzip = args.output.extension().is_some_and(|e| e == "gz");
    let encoded = match preprocess_volume(&volume, &intensity)? {
        Preprocessed::Gray(gray) => write_ct_u8(&gray, gzip)?,
        Preprocessed::Float(floats) => write_f32(&floats, gzip)?,
    };
    std::fs::write(&args.output, encoded)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "wrote {} ({})",
        args.output.display(),
        volume.geometry.describe()
    );
    Ok(ExitCode::SUCCESS)
}
