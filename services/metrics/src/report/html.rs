//! The report as one self-contained HTML page: tables, inline SVG curves and the
//! overlays embedded as data URIs, so it can be mailed or archived as one file.

use std::fmt::Write;

use base64::Engine;

use super::{ReportRecord, TABLE_HEADINGS, aggregate_rows, cell, curves, markdown::STUDY_BEST};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn table(out: &mut String, first: &str, rows: &[(String, Vec<String>)]) {
    out.push_str("<table><tr>");
    let _ = write!(out, "<th>{}</th>", escape(first));
    for heading in TABLE_HEADINGS {
        let _ = write!(out, "<th>{heading}</th>");
    }
    out.push_str("</tr>");
    for (name, cells) in rows {
        let _ = write!(out, "<tr><td>{}</td>", escape(name));
        for c in cells {
            let _ = write!(out, "<td class=\"n\">{}</td>", escape(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>\n");
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}\
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{display:inline-block;margin:8px}\
figcaption{font-size:0.85em}.key span{padding:0 6px;margin-right:8px}";

/// The page; `overlay_png(key)` supplies each overlay's PNG bytes (skipped when `None`).
pub fn html(report: &ReportRecord, overlay_png: &dyn Fn(&str) -> Option<Vec<u8>>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Evaluation {}</title><style>{STYLE}</style></head><body>",
        escape(&report.report_id)
    );
    let _ = write!(
        out,
        "<h1>Evaluation {}</h1><p>Model <code>{}</code> on the {} split of dataset <code>{}</code>: {} cases evaluated, {} failed.</p>",
        escape(&report.report_id),
        escape(&report.model_id),
        escape(&report.split),
        escape(&report.dataset_id),
        report.cases.len(),
        report.failed.len()
    );
    out.push_str("<h2>IoU over all voxels of the split (the study's table)</h2>");
    let pooled = report
        .aggregate
        .iter()
        .map(|a| cell(a.pooled_iou, 2))
        .collect();
    let study = STUDY_BEST.1.iter().map(|v| format!("{v:.2}")).collect();
    table(
        &mut out,
        "Model",
        &[
            (report.model_id.clone(), pooled),
            (STUDY_BEST.0.to_owned(), study),
        ],
    );
    out.push_str("<h2>Per-case statistics</h2>");
    table(&mut out, "Metric", &aggregate_rows(report));

    out.push_str("<h2>Cases</h2><table><tr><th>Case</th><th>Liver IoU</th><th>Kidney IoU</th><th>Spleen IoU</th><th>Pancreas IoU</th></tr>");
    for case in &report.cases {
        let _ = write!(out, "<tr><td>{}</td>", escape(&case.case_id));
        for c in &case.evaluation.classes[1..] {
            let _ = write!(out, "<td class=\"n\">{}</td>", cell(c.iou, 3));
        }
        out.push_str("</tr>");
    }
    for failed in &report.failed {
        let _ = write!(
            out,
            "<tr><td>{}</td><td colspan=\"4\">failed: {}</td></tr>",
            escape(&failed.case_id),
            escape(&failed.reason)
        );
    }
    out.push_str("</table>");

    if !report.history.is_empty() {
        let _ = write!(
            out,
            "<h2>Training</h2><p>Best epoch: {}.</p>",
            report.best_epoch
        );
        for svg in [
            curves::loss_curves(&report.history),
            curves::iou_curves(&report.history),
        ]
        .into_iter()
        .flatten()
        {
            out.push_str(&svg);
        }
    }
    if !report.overlays.is_empty() {
        out.push_str(
            "<h2>Overlays</h2><p class=\"key\"><span style=\"background:#ff0\">found</span>\
             <span style=\"background:#0f0\">false positive</span><span style=\"background:#f00;color:#fff\">missed</span></p>",
        );
        for overlay in &report.overlays {
            let Some(png) = overlay_png(&overlay.key) else {
                continue;
            };
            let data = base64::engine::general_purpose::STANDARD.encode(png);
            let _ = write!(
                out,
                "<figure><img alt=\"{0}\" src=\"data:image/png;base64,{data}\"><figcaption>{0}</figcaption></figure>",
                escape(&overlay.caption())
            );
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn the_page_is_self_contained_and_escaped() {
        let report = sample::report();
        let page = html(&report, &|key| {
            key.ends_with("grid.png").then(|| vec![1, 2, 3])
        });
        assert!(page.contains("<th>Model</th><th>Background</th><th>Liver</th><th>Kidneys</th><th>Spleen</th><th>Pancreas</th>"));
        assert!(page.contains("model-&lt;b&gt;") && !page.contains("model-<b>"));
        assert!(page.contains("src=\"data:image/png;base64,AQID\""));
        assert!(page.contains("<svg"));
        assert!(!page.contains("src=\"http"));
    }
}
