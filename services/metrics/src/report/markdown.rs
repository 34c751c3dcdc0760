//! The report as Markdown, with the curves and overlays as files beside it.

use std::fmt::Write;

use abdoseg_imaging::CLASS_NAMES;

use super::{ReportRecord, TABLE_HEADINGS, aggregate_rows, cell};

/// The study's best row (Table 1, U-Net 1 with five levels): the floor to clear.
pub const STUDY_BEST: (&str, [f64; 5]) = ("study: unet-1-5-levels", [0.99, 0.84, 0.71, 0.68, 0.05]);

fn table_header(out: &mut String, first: &str) {
    let _ = writeln!(out, "| {first} | {} |", TABLE_HEADINGS.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(TABLE_HEADINGS.len()));
}

/// Markdown for `report`: `loss.svg`, `iou.svg` and `overlays/*.png` are relative links.
pub fn markdown(report: &ReportRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Evaluation {}\n", report.report_id);
    let _ = writeln!(
        out,
        "Model `{}` on the {} split of dataset `{}`: {} cases evaluated, {} failed.\n",
        report.model_id,
        report.split,
        report.dataset_id,
        report.cases.len(),
        report.failed.len()
    );
    let _ = writeln!(
        out,
        "## IoU over all voxels of the split (the study's table)\n"
    );
    table_header(&mut out, "Model");
    let pooled: Vec<String> = report
        .aggregate
        .iter()
        .map(|a| cell(a.pooled_iou, 2))
        .collect();
    let _ = writeln!(out, "| {} | {} |", report.model_id, pooled.join(" | "));
    let study: Vec<String> = STUDY_BEST.1.iter().map(|v| format!("{v:.2}")).collect();
    let _ = writeln!(out, "| {} | {} |\n", STUDY_BEST.0, study.join(" | "));

    let _ = writeln!(out, "## Per-case statistics\n");
    table_header(&mut out, "Metric");
    for (name, cells) in aggregate_rows(report) {
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    let _ = writeln!(out, "\n## Cases\n");
    let organs = &CLASS_NAMES[1..];
    let columns: Vec<String> = organs.iter().map(|o| format!("{o} IoU / Dice")).collect();
    let _ = writeln!(out, "| Case | {} |", columns.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(organs.len()));
    for case in &report.cases {
        let cells: Vec<String> = case.evaluation.classes[1..]
            .iter()
            .map(|c| format!("{} / {}", cell(c.iou, 3), cell(c.dice, 3)))
            .collect();
        let _ = writeln!(out, "| {} | {} |", case.case_id, cells.join(" | "));
    }
    for failed in &report.failed {
        let _ = writeln!(out, "| {} | failed: {} |", failed.case_id, failed.reason);
    }
    if !report.history.is_empty() {
        let _ = writeln!(
            out,
            "\n## Training\n\nBest epoch: {}.\n\n![Loss per epoch](loss.svg)\n\n![Validation IoU per organ per epoch](iou.svg)",
            report.best_epoch
        );
    }
    if !report.overlays.is_empty() {
        let _ = writeln!(
            out,
            "\n## Overlays\n\nYellow = found, green = false positive, red = missed. The grid shows \
             the preprocessed slice and all organs, then liver, kidneys, spleen and pancreas.\n"
        );
        for overlay in &report.overlays {
            let _ = writeln!(
                out,
                "![{}](overlays/{})\n",
                overlay.caption(),
                overlay.relative_path()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn the_study_table_leads_the_report() {
        let md = markdown(&sample::report());
        assert!(md.contains("| Model | Background | Liver | Kidneys | Spleen | Pancreas |"));
        // Pooled IoU: liver (90 + 40) / (130 + 20), background 1000 / 1020.
        let pooled = format!("{:.2}", 130.0 / 150.0);
        assert!(
            md.contains(&format!("| model-<b> | 0.98 | {pooled} | — | — | — |")),
            "{md}"
        );
        assert!(md.contains("| study: unet-1-5-levels | 0.99 | 0.84 | 0.71 | 0.68 | 0.05 |"));
        assert!(md.contains("| Mean HD95 (mm) | — | 4.25 |"));
        assert!(md.contains("| Case_00013 | failed: inference refused: busy |"));
        assert!(md.contains("](overlays/Case_00007-slice-012-grid.png)"));
        assert!(md.contains("![Loss per epoch](loss.svg)"));
    }
}
