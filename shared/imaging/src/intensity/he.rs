//! The study's HE variant: near-black gray levels set to 0, then global histogram
//! equalization with OpenCV's `equalizeHist` semantics.

use ndarray::Array2;

/// Histogram of 8-bit pixels; four interleaved tables avoid stalls on runs of equal
/// values (CT slices are full of them).
pub(super) fn histogram(pixels: &[u8]) -> [u32; 256] {
    let mut tables = [[0u32; 256]; 4];
    let mut chunks = pixels.chunks_exact(4);
    for c in &mut chunks {
        tables[0][usize::from(c[0])] += 1;
        tables[1][usize::from(c[1])] += 1;
        tables[2][usize::from(c[2])] += 1;
        tables[3][usize::from(c[3])] += 1;
    }
    for &p in chunks.remainder() {
        tables[0][usize::from(p)] += 1;
    }
    let mut hist = [0u32; 256];
    for (i, h) in hist.iter_mut().enumerate() {
        *h = tables[0][i] + tables[1][i] + tables[2][i] + tables[3][i];
    }
    hist
}

/// The equalization mapping of `cv2.equalizeHist` for a histogram.
fn equalization_lut(hist: &[u32; 256], total: u32) -> [u8; 256] {
    let mut lut = [0u8; 256];
    let Some(first) = hist.iter().position(|&h| h > 0) else {
        return lut;
    };
    if hist[first] == total {
        // A flat image keeps its level.
        lut[first] = first as u8;
        return lut;
    }
    let scale = 255.0f32 / (total - hist[first]) as f32;
    let mut sum = 0u32;
    for i in first + 1..256 {
        sum += hist[i];
        lut[i] = super::round_to_u8(sum as f32 * scale);
    }
    lut
}

/// Equalizes the histogram of an 8-bit image in place, as `cv2.equalizeHist` does.
pub fn equalize_histogram(pixels: &mut [u8]) {
    let lut = equalization_lut(&histogram(pixels), pixels.len() as u32);
    for p in pixels.iter_mut() {
        *p = lut[usize::from(*p)];
    }
}

/// The HE variant on a windowed slice: levels below `threshold` become 0, then the
/// histogram is equalized.
pub fn he_slice(gray: &mut Array2<u8>, threshold: u8) {
    if let Some(pixels) = gray.as_slice_mut() {
        he_pixels(pixels, threshold);
        return;
    }
    let mut owned: Vec<u8> = gray.iter().copied().collect();
    he_pixels(&mut owned, threshold);
    for (dst, src) in gray.iter_mut().zip(owned) {
        *dst = src;
    }
}

/// Two passes: the thresholding folds into the histogram and the mapping instead of
/// rewriting the pixels first.
fn he_pixels(pixels: &mut [u8], threshold: u8) {
    let mut hist = histogram(pixels);
    let t = usize::from(threshold);
    if t > 0 {
        let below: u32 = hist[..t].iter().sum();
        hist[..t].fill(0);
        hist[0] = below;
    }
    let lut = equalization_lut(&hist, pixels.len() as u32);
    let mut mapping = lut;
    mapping[..t].fill(lut[0]);
    for p in pixels.iter_mut() {
        *p = mapping[usize::from(*p)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_levels_over_the_full_range() {
        let mut pixels = vec![10, 10, 20, 20, 30, 30, 40, 40];
        equalize_histogram(&mut pixels);
        // The first occupied level maps to 0, the last to 255.
        assert_eq!(pixels, [0, 0, 85, 85, 170, 170, 255, 255]);
    }

    #[test]
    fn a_flat_image_keeps_its_level() {
        let mut pixels = vec![77u8; 16];
        equalize_histogram(&mut pixels);
        assert!(pixels.iter().all(|&p| p == 77));
    }

    #[test]
    fn the_threshold_blackens_near_black_first() {
        let mut gray = Array2::from_shape_vec((1, 4), vec![3, 9, 10, 200]).unwrap();
        he_slice(&mut gray, 10);
        assert_eq!(gray[[0, 0]], 0);
        assert_eq!(gray[[0, 1]], 0);
        assert_eq!(gray[[0, 3]], 255);
    }
}
