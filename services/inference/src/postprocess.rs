//! After the network: the largest 3D connected components per organ, the kidneys as a
//! pair that lies side by side, and per-organ figures (voxels, mL, mean HU, bounding box).

use abdoseg_model::NUM_CLASSES;
use ndarray::Array3;

/// How many components each class keeps: background untouched, one per organ; the
/// kidneys keep a pair ([`kidney_pair`]).
const KEEP: [usize; NUM_CLASSES] = [0, 1, 2, 1, 1];

const KIDNEY: usize = 2;

/// The two kidneys' centres lie at least this far apart across the body, mm (real
/// kidneys' centres lie 90–130 mm apart; a fragment of one kidney lies beside it).
const KIDNEYS_APART_MM: f64 = 40.0;

/// ...and at most this far apart along the body's axis, mm (the right kidney sits 10–30 mm
/// lower than the left; a bowel loop or pelvic structure called kidney lies 100 mm and more
/// below both).
const KIDNEYS_LEVEL_MM: f64 = 75.0;

/// The kidney components searched for a pair: the largest few (the rest are specks).
const KIDNEY_CANDIDATES: usize = 16;

/// One 6-connected component: its voxels' flat indices.
struct Component {
    voxels: Vec<u32>,
    /// Centre in mm along canonical `(z, y, x)`.
    centre: [f64; 3],
}

/// Keeps, per organ, its largest 6-connected components; every other voxel of that organ
/// becomes background. The kidneys keep the largest pair that lies side by side at one
/// level (or the largest alone when no such pair exists), not merely the two largest:
/// a "kidney" in the pelvis must not displace the real second kidney. `spacing` is the
/// canonical `[x, y, z]` in mm.
pub fn keep_largest_components(labels: &mut Array3<u8>, spacing: [f32; 3]) {
    let (depth, height, width) = labels.dim();
    let Some(flat) = labels.as_slice_mut() else {
        return;
    };
    let mut visited = vec![false; flat.len()];
    let mut components: Vec<Vec<Component>> = (0..NUM_CLASSES).map(|_| Vec::new()).collect();
    let mut queue: Vec<u32> = Vec::new();
    let mm = [spacing[2], spacing[1], spacing[0]].map(f64::from);
    for start in 0..flat.len() {
        let class = usize::from(flat[start]);
        if class == 0 || class >= NUM_CLASSES || visited[start] {
            continue;
        }
        visited[start] = true;
        queue.clear();
        queue.push(start as u32);
        let mut head = 0;
        let mut sum = [0f64; 3];
        while head < queue.len() {
            let index = queue[head] as usize;
            head += 1;
            let (z, rest) = (index / (height * width), index % (height * width));
            let (y, x) = (rest / width, rest % width);
            sum[0] += z as f64;
            sum[1] += y as f64;
            sum[2] += x as f64;
            let mut visit = |n: usize| {
                if !visited[n] && usize::from(flat[n]) == class {
                    visited[n] = true;
                    queue.push(n as u32);
                }
            };
            if x > 0 {
                visit(index - 1);
            }
            if x + 1 < width {
                visit(index + 1);
            }
            if y > 0 {
                visit(index - width);
            }
            if y + 1 < height {
                visit(index + width);
            }
            if z > 0 {
                visit(index - height * width);
            }
            if z + 1 < depth {
                visit(index + height * width);
            }
        }
        let n = queue.len() as f64;
        components[class].push(Component {
            voxels: queue.clone(),
            centre: [0, 1, 2].map(|a| sum[a] / n * mm[a]),
        });
    }
    for (class, mut found) in components.into_iter().enumerate() {
        found.sort_by_key(|c| std::cmp::Reverse(c.voxels.len()));
        let kept = if class == KIDNEY {
            kidney_pair(&found)
        } else {
            (0..KEEP[class].min(found.len())).collect()
        };
        for (i, dropped) in found.iter().enumerate() {
            if kept.contains(&i) {
                continue;
            }
            for &index in &dropped.voxels {
                flat[index as usize] = 0;
            }
        }
    }
}

/// Indices (into `found`, largest first) of the kidney components to keep: the pair with
/// the most voxels whose centres lie [`KIDNEYS_APART_MM`] apart across the body and
/// within [`KIDNEYS_LEVEL_MM`] along it; the largest alone when no pair does.
fn kidney_pair(found: &[Component]) -> Vec<usize> {
    let candidates = found.len().min(KIDNEY_CANDIDATES);
    let mut best: Option<(usize, [usize; 2])> = None;
    for a in 0..candidates {
        for b in a + 1..candidates {
            let (p, q) = (found[a].centre, found[b].centre);
            let across = (p[2] - q[2]).abs();
            let along = (p[0] - q[0]).abs();
            if across < KIDNEYS_APART_MM || along > KIDNEYS_LEVEL_MM {
                continue;
            }
            let size = found[a].voxels.len() + found[b].voxels.len();
            if best.is_none_or(|(s, _)| size > s) {
                best = Some((size, [a, b]));
            }
        }
    }
    match best {
        Some((_, pair)) => pair.to_vec(),
        None => (0..found.len().min(1)).collect(),
    }
}

/// Figures of one organ on the label map's grid (array axes `(k, j, i)`).
#[derive(Debug, Clone, PartialEq)]
pub struct OrganFigures {
    pub class: u8,
    pub voxels: u64,
    pub mean_hu: f64,
    /// Inclusive minimum and exclusive maximum voxel index along i, j, k; `None` if empty.
    pub bounds: Option<([usize; 3], [usize; 3])>,
}

/// Voxel count, mean HU and bounding box of each organ, liver to pancreas.
pub fn organ_figures(labels: &Array3<u8>, ct: &Array3<f32>) -> Vec<OrganFigures> {
    let mut voxels = [0u64; NUM_CLASSES];
    let mut sums = [0f64; NUM_CLASSES];
    let mut lows = [[usize::MAX; 3]; NUM_CLASSES];
    let mut highs = [[0usize; 3]; NUM_CLASSES];
    for (((k, j, i), &label), &hu) in labels.indexed_iter().zip(ct.iter()) {
        let c = usize::from(label);
        if c == 0 || c >= NUM_CLASSES {
            continue;
        }
        voxels[c] += 1;
        sums[c] += f64::from(hu);
        for (axis, v) in [i, j, k].into_iter().enumerate() {
            lows[c][axis] = lows[c][axis].min(v);
            highs[c][axis] = highs[c][axis].max(v + 1);
        }
    }
    (1..NUM_CLASSES)
        .map(|c| OrganFigures {
            class: c as u8,
            voxels: voxels[c],
            mean_hu: if voxels[c] == 0 {
                0.0
            } else {
                sums[c] / voxels[c] as f64
            },
            bounds: (voxels[c] > 0).then_some((lows[c], highs[c])),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stray_islands_go_and_both_kidneys_stay() {
        let mut labels = Array3::<u8>::zeros((4, 8, 8));
        // A liver block and a one-voxel liver island.
        for z in 0..3 {
            for y in 0..3 {
                for x in 0..3 {
                    labels[[z, y, x]] = 1;
                }
            }
        }
        labels[[3, 7, 7]] = 1;
        // Two kidneys of 4 and 2 voxels and a kidney speck of 1, apart.
        for (z, y, x) in [
            (0, 6, 0),
            (0, 6, 1),
            (1, 6, 0),
            (1, 6, 1),
            (0, 0, 6),
            (1, 0, 6),
        ] {
            labels[[z, y, x]] = 2;
        }
        labels[[3, 3, 5]] = 2;
        // 10 mm voxels: the two kidneys lie 55 mm apart across the body.
        keep_largest_components(&mut labels, [10.0, 10.0, 10.0]);
        assert_eq!(labels[[3, 7, 7]], 0, "the liver island is gone");
        assert_eq!(labels.iter().filter(|&&v| v == 1).count(), 27);
        assert_eq!(
            labels.iter().filter(|&&v| v == 2).count(),
            6,
            "two kidneys kept"
        );
        assert_eq!(labels[[3, 3, 5]], 0, "the speck is gone");

        let ct = labels.mapv(|v| f32::from(v) * 100.0);
        let figures = organ_figures(&labels, &ct);
        assert_eq!(figures[0].voxels, 27);
        assert_eq!(figures[0].mean_hu, 100.0);
        assert_eq!(figures[0].bounds, Some(([0, 0, 0], [3, 3, 3])));
        assert_eq!(figures[2].voxels, 0);
        assert_eq!(figures[2].bounds, None);
    }

    /// Fills a box of `labels` (inclusive-exclusive ranges along z, y, x) with `class`.
    fn fill(
        labels: &mut Array3<u8>,
        z: (usize, usize),
        y: (usize, usize),
        x: (usize, usize),
        class: u8,
    ) {
        for k in z.0..z.1 {
            for j in y.0..y.1 {
                for i in x.0..x.1 {
                    labels[[k, j, i]] = class;
                }
            }
        }
    }

    #[test]
    fn a_pelvic_kidney_does_not_displace_the_second_kidney() {
        // 10 mm across, 5 mm along the body. The left kidney (24 voxels) high up, the
        // right one smaller (8) 10 mm lower and 90 mm across; a larger "kidney" (16) on
        // the right 90 mm below both, and one beside the left kidney on its own side.
        let mut labels = Array3::<u8>::zeros((40, 8, 16));
        fill(&mut labels, (30, 33), (4, 6), (12, 16), 2);
        fill(&mut labels, (28, 30), (4, 6), (2, 4), 2);
        fill(&mut labels, (10, 14), (4, 6), (2, 4), 2);
        let spacing = [10.0, 10.0, 5.0];
        keep_largest_components(&mut labels, spacing);
        let kept = |l: &Array3<u8>, z: usize, x: usize| l[[z, 4, x]] == 2;
        assert!(kept(&labels, 31, 13), "the largest kidney stays");
        assert!(kept(&labels, 29, 2), "the second kidney beside it stays");
        assert!(!kept(&labels, 12, 2), "the pelvic one goes, though larger");
        assert_eq!(labels.iter().filter(|&&v| v == 2).count(), 24 + 8);

        // Without a partner across the body only the largest stays: the other two lie
        // on its side (30 mm across) or 90 mm below.
        let mut labels = Array3::<u8>::zeros((40, 8, 16));
        fill(&mut labels, (30, 33), (4, 6), (12, 16), 2);
        fill(&mut labels, (30, 32), (0, 2), (10, 12), 2);
        fill(&mut labels, (10, 14), (4, 6), (2, 4), 2);
        keep_largest_components(&mut labels, spacing);
        assert_eq!(labels.iter().filter(|&&v| v == 2).count(), 24);
        assert!(kept(&labels, 31, 13));
    }
}
