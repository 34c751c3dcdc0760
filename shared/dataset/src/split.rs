//! The patient-level split: each case (patient) goes to exactly one of train, validation
//! and test, by a seeded shuffle of the sorted case ids — never by slice.

use rand::{SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::manifest::{Split, SplitFractions};

/// The split of each case id, in the order given. The result depends only on the set of
/// ids, the seed and the fractions.
pub fn assign(case_ids: &[String], seed: u64, fractions: &SplitFractions) -> Vec<Split> {
    let mut order: Vec<usize> = (0..case_ids.len()).collect();
    order.sort_by(|&a, &b| case_ids[a].cmp(&case_ids[b]));
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n = case_ids.len();
    let train = (n as f64 * fractions.train).round() as usize;
    let validation = ((n as f64 * fractions.validation).round() as usize).min(n - train.min(n));
    let mut splits = vec![Split::Test; n];
    for (rank, &index) in order.iter().enumerate() {
        splits[index] = if rank < train {
            Split::Train
        } else if rank < train + validation {
            Split::Validation
        } else {
            Split::Test
        };
    }
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("Case_{i:05}")).collect()
    }

    #[test]
    fn sixty_twenty_twenty_by_patient() {
        let splits = assign(&ids(10), 1, &SplitFractions::default());
        let count = |s| splits.iter().filter(|&&x| x == s).count();
        assert_eq!(
            (
                count(Split::Train),
                count(Split::Validation),
                count(Split::Test)
            ),
            (6, 2, 2)
        );
    }

    #[test]
    fn seeded_and_independent_of_input_order() {
        let forward = ids(20);
        let mut backward = forward.clone();
        backward.reverse();
        let a = assign(&forward, 7, &SplitFractions::default());
        let mut b = assign(&backward, 7, &SplitFractions::default());
        b.reverse();
        assert_eq!(a, b);
        assert_ne!(a, assign(&forward, 8, &SplitFractions::default()));
    }
}
