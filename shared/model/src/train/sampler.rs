//! Batches with foreground oversampling: a share of every batch is drawn from slices that
//! contain the rarest organs (the pancreas first), the rest from a shuffle of all slices.

use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::NUM_CLASSES;

/// Draws the batches of each epoch.
#[derive(Debug)]
pub struct Sampler {
    count: usize,
    /// Organs from rarest to most common, with the slices that contain each.
    pools: Vec<Vec<usize>>,
    share: f32,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// `class_voxels[i]`: voxels of each class in slice `i`; `share`: 0 to 1.
    pub fn new(class_voxels: &[[u64; NUM_CLASSES]], share: f32, seed: u64) -> Self {
        let mut organs: Vec<(u64, Vec<usize>)> = (1..NUM_CLASSES)
            .map(|c| {
                let total = class_voxels.iter().map(|v| v[c]).sum();
                let slices = (0..class_voxels.len())
                    .filter(|&i| class_voxels[i][c] > 0)
                    .collect();
                (total, slices)
            })
            .filter(|(total, _)| *total > 0)
            .collect();
        organs.sort_by_key(|(total, _)| *total);
        Self {
            count: class_voxels.len(),
            pools: organs.into_iter().map(|(_, slices)| slices).collect(),
            share: share.clamp(0.0, 1.0),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// One epoch of `slices` draws (all slices when `None`): ⌈slices / batch⌉ batches of
    /// slice indices. The uniform part is a shuffle, repeated when `slices` exceeds it.
    pub fn epoch(&mut self, batch: usize, slices: Option<usize>) -> Vec<Vec<usize>> {
        let batch = batch.max(1);
        let total = slices.unwrap_or(self.count).max(1);
        let mut order: Vec<usize> = Vec::with_capacity(total + self.count);
        while order.len() < total && self.count > 0 {
            let mut pass: Vec<usize> = (0..self.count).collect();
            pass.shuffle(&mut self.rng);
            order.extend(pass);
        }
        let batches = total.div_ceil(batch);
        let oversampled = if self.pools.is_empty() {
            0
        } else {
            (self.share * batch as f32).round() as usize
        };
        let mut uniform = order.into_iter();
        let mut out = Vec::with_capacity(batches);
        let mut draw = 0usize;
        for _ in 0..batches {
            let mut indices = Vec::with_capacity(batch);
            for _ in 0..oversampled {
                // Rarest first, in turn.
                let pool = &self.pools[draw % self.pools.len().min(2)];
                draw += 1;
                indices.push(pool[self.rng.random_range(0..pool.len())]);
            }
            while indices.len() < batch {
                match uniform.next() {
                    Some(i) => indices.push(i),
                    None => break,
                }
            }
            if !indices.is_empty() {
                out.push(indices);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_organs_fill_their_share() {
        // 100 slices; only slice 7 has pancreas, 10..20 have liver.
        let mut voxels = vec![[100, 0, 0, 0, 0]; 100];
        voxels[7][4] = 5;
        for v in voxels.iter_mut().take(20).skip(10) {
            v[1] = 500;
        }
        let mut sampler = Sampler::new(&voxels, 0.5, 1);
        let batches = sampler.epoch(10, None);
        assert_eq!(batches.len(), 10);
        let pancreas = batches.iter().flatten().filter(|&&i| i == 7).count();
        // Half of each batch alternates pancreas and liver slices: 25 draws of slice 7.
        assert!(pancreas >= 25, "{pancreas}");
        let mut without = Sampler::new(&voxels, 0.0, 1);
        let all: usize = without.epoch(10, None).iter().map(Vec::len).sum();
        assert_eq!(all, 100);
    }

    #[test]
    fn an_epoch_can_be_shorter_or_longer_than_the_split() {
        let voxels = vec![[100, 1, 0, 0, 0]; 30];
        let mut sampler = Sampler::new(&voxels, 0.0, 3);
        let short: Vec<usize> = sampler.epoch(8, Some(16)).concat();
        assert_eq!(short.len(), 16);
        let long: Vec<usize> = sampler.epoch(8, Some(64)).concat();
        assert_eq!(long.len(), 64);
        // Every slice is seen before any is seen a second time.
        let mut first_pass = long[..30].to_vec();
        first_pass.sort_unstable();
        assert_eq!(first_pass, (0..30).collect::<Vec<_>>());
    }
}
