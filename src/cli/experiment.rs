//! `abdoseg experiment CONFIG`: the study's grid through a running server, into the
//! study's comparison table (see [`crate::experiment`]).

use std::{path::PathBuf, process::ExitCode};

use abdoseg_server::config::DEFAULT_LISTEN;
use anyhow::Context;

use crate::experiment::{ExperimentConfig, curves, run as run_grid, table};

#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// The experiment file (TOML): name, source, schemes, variants, depths, and settings.
    config: PathBuf,
    /// Also write the table (Markdown) to this file, and the validation curves of every
    /// configuration beside it (same name, `.svg`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The server's URL.
    #[arg(long, env = "ABDOSEG_URL", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    url: String,
}

pub async fn run(args: ExperimentArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let config = ExperimentConfig::parse(&text)?;
    let rows = run_grid(&args.url, &config).await?;
    let table = table(&rows);
    println!("\n{table}");
    if let Some(out) = args.out {
        std::fs::write(&out, &table).with_context(|| format!("cannot write {}", out.display()))?;
        if let Some(svg) = curves(&rows) {
            let path = out.with_extension("svg");
            std::fs::write(&path, svg)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("table: {}, curves: {}", out.display(), path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
