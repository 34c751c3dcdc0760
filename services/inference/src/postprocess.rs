//! After the network: the largest 3D connected components per organ (two for the
//! kidneys), and per-organ figures (voxels, mL, mean HU, bounding box).

use abdoseg_model::NUM_CLASSES;
use ndarray::Array3;

/// How many components each class keeps: background untouched, two kidneys.
const KEEP: [usize; NUM_CLASSES] = [0, 1, 2, 1, 1];

/// Keeps, per organ, its largest 6-connected components (two for the kidneys); every
/// other voxel of that organ becomes background.
pub fn keep_largest_components(labels: &mut Array3<u8>) {
    let (depth, height, width) = labels.dim();
    let Some(flat) = labels.as_slice_mut() else {
        return;
    };
    let mut visited = vec![false; flat.len()];
    let mut components: Vec<Vec<Vec<u32>>> = vec![Vec::new(); NUM_CLASSES];
    let mut queue: Vec<u32> = Vec::new();
    for start in 0..flat.len() {
        let class = usize::from(flat[start]);
        if class == 0 || class >= NUM_CLASSES || visited[start] {
            continue;
        }
        visited[start] = true;
        queue.clear();
        queue.push(start as u32);
        let mut head = 0;
        while head < queue.len() {
            let index = queue[head] as usize;
            head += 1;
            let (z, rest) = (index / (height * width), index % (height * width));
            let (y, x) = (rest / width, rest % width);
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
        components[class].push(queue.clone());
    }
    for (class, mut found) in components.into_iter().enumerate() {
        found.sort_by_key(|c| std::cmp::Reverse(c.len()));
        for dropped in found.iter().skip(KEEP[class]) {
            for &index in dropped {
                flat[index as usize] = 0;
            }
        }
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
        keep_largest_components(&mut labels);
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
}
