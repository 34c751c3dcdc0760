//! Training curves as SVG: loss and mean organ IoU per epoch, train and validation.

use abdoseg_imaging::{CLASS_NAMES, NUM_CLASSES};
use abdoseg_model::train::EpochReport;
use plotters::prelude::*;

const SIZE: (u32, u32) = (640, 360);

/// A named line of (epoch, value) points in a colour.
type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

/// Draws named series of (epoch, value) points in a palette of distinct colours, e.g.
/// one line per configuration of an experiment; `None` when there is nothing to draw.
pub fn epoch_chart(
    title: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Option<String> {
    let lines = series
        .iter()
        .enumerate()
        .map(|(n, (name, points))| {
            let (r, g, b) = Palette99::COLORS[n % Palette99::COLORS.len()];
            (name.as_str(), points.clone(), RGBColor(r, g, b))
        })
        .collect();
    plot(title, y_label, lines)
}

/// Draws series over epochs; `None` when there is nothing to draw.
fn plot(title: &str, y_label: &str, series: Vec<Series<'_>>) -> Option<String> {
    let points = series.iter().flat_map(|s| s.1.iter());
    let (mut x_max, mut y_max) = (1.0f64, 0.0f64);
    let mut any = false;
    for &(x, y) in points {
        any = true;
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    if !any {
        return None;
    }
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(1.0..x_max.max(2.0), 0.0..y_max)
            .ok()?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_label)
            .draw()
            .ok()?;
        for (name, points, colour) in series {
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .ok()?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

/// Train and validation loss per epoch.
pub fn loss_curves(history: &[EpochReport]) -> Option<String> {
    let series =
        |f: fn(&EpochReport) -> f64| history.iter().map(|e| (e.epoch as f64, f(e))).collect();
    plot(
        "Loss",
        "loss",
        vec![
            ("train", series(|e| e.train_loss), BLUE),
            ("validation", series(|e| e.validation_loss), RED),
        ],
    )
}

/// Validation IoU per organ and the train mean organ IoU, per epoch.
pub fn iou_curves(history: &[EpochReport]) -> Option<String> {
    let colours = [RGBColor(200, 150, 0), RGBColor(0, 150, 0), RED, MAGENTA];
    let mut lines: Vec<Series<'_>> = (1..NUM_CLASSES)
        .map(|class| {
            let points = history
                .iter()
                .map(|e| (e.epoch as f64, e.validation.iou()[class]))
                .collect();
            (CLASS_NAMES[class], points, colours[class - 1])
        })
        .collect();
    lines.push((
        "train (mean)",
        history
            .iter()
            .map(|e| (e.epoch as f64, e.train.mean_foreground_iou()))
            .collect(),
        BLUE,
    ));
    plot("Validation IoU per organ", "IoU", lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn curves_are_svg_with_both_series() {
        let svg = loss_curves(&sample::report().history).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("validation") && svg.contains("train"));
        assert!(svg.matches("<polyline").count() >= 2, "{svg}");
        assert!(loss_curves(&[]).is_none());
        let chart = epoch_chart(
            "Validation mean IoU",
            "IoU",
            &[
                ("a".into(), vec![(1.0, 0.2), (2.0, 0.4)]),
                ("b".into(), vec![(1.0, 0.3)]),
            ],
        )
        .unwrap();
        assert!(chart.contains(">\na\n<") && chart.contains(">\nb\n<"));
        let iou = iou_curves(&sample::report().history).unwrap();
        assert!(iou.contains("pancreas") && iou.contains("train (mean)"));
        for organ in &CLASS_NAMES[1..] {
            assert!(
                iou.contains(&format!(">\n{organ}\n<")),
                "{organ} in the legend"
            );
        }
    }
}
