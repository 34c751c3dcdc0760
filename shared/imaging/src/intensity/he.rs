//! The study's HE variant: near-black gray levels set to 0, then global histogram
//! equalization with OpenCV's `equalizeHist` semantics.

use ndarray::Array2;

/// Equalizes the histogram of an 8-bit image in place, as `cv2.equalizeHist` does.
pub fn equalize_histogram(pixels: &mut [u8]) {
    let mut hist = [0u32; 256];
    for &p in pixels.iter() {
        hist[usize::from(p)] += 1;
    }
    let total = pixels.len() as u32;
    let Some(first) = hist.iter().position(|&h| h > 0) else {
        return;
    };
    if hist[first] == total {
        pixels.fill(first as u8);
        return;
    }
    let scale = 255.0f32 / (total - hist[first]) as f32;
    let mut lut = [0u8; 256];
    let mut sum = 0u32;
    for i in first + 1..256 {
        sum += hist[i];
        lut[i] = (sum as f32 * scale).round_ties_even().clamp(0.0, 255.0) as u8;
    }
    for p in pixels.iter_mut() {
        *p = lut[usize::from(*p)];
    }
}

/// The HE variant on a windowed slice: levels below `threshold` become 0, then the
/// histogram is equalized.
pub fn he_slice(gray: &mut Array2<u8>, threshold: u8) {
    gray.mapv_inplace(|v| if v < threshold { 0 } else { v });
    match gray.as_slice_mut() {
        Some(pixels) => equalize_histogram(pixels),
        None => {
            let mut owned = gray.iter().copied().collect::<Vec<_>>();
            equalize_histogram(&mut owned);
            for (dst, src) in gray.iter_mut().zip(owned) {
                *dst = src;
            }
        }
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
