//! The process's memory budget: every request that decodes a volume (or trains) reserves
//! its estimated peak before allocating, so that no request — or crowd of them — can
//! take the process past its memory limit. One budget per process, shared by every
//! service in it (the container's limit is per process).

use std::{fmt, sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reservations are counted in MiB.
const UNIT: u64 = 1 << 20;

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The request needs more than the whole budget: it can never run here.
    #[error(
        "this request needs about {needed} MiB of memory; this service allows {budget} MiB \
         in all (--memory-budget-mib)"
    )]
    NeverFits { needed: u64, budget: u64 },
    /// Other work holds the memory now; the request may be retried later.
    #[error(
        "this request needs about {needed} MiB of memory and only {free} MiB of \
         {budget} are free now; retry later"
    )]
    Busy { needed: u64, free: u64, budget: u64 },
}

/// The budget: a semaphore of MiB.
#[derive(Clone)]
pub struct MemoryBudget {
    total_mib: u64,
    free: Arc<Semaphore>,
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("total_mib", &self.total_mib)
            .field("free_mib", &self.free.available_permits())
            .finish()
    }
}

/// Memory held for one request; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    budget: MemoryBudget,
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(UNIT).max(1)
}

impl MemoryBudget {
    /// A budget of `total_bytes`.
    pub fn new(total_bytes: u64) -> Self {
        let total_mib = (total_bytes / UNIT).clamp(1, u64::from(u32::MAX));
        Self {
            total_mib,
            free: Arc::new(Semaphore::new(total_mib as usize)),
        }
    }

    /// Three quarters of the memory this process may use: the cgroup's limit where one
    /// is set (a container), else the machine's memory.
    pub fn detect() -> Self {
        let limit = [cgroup_limit(), physical_memory()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(8 << 30);
        Self::new(limit / 4 * 3)
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_mib * UNIT
    }

    fn never_fits(&self, needed: u64) -> Option<BudgetError> {
        (needed > self.total_mib).then_some(BudgetError::NeverFits {
            needed,
            budget: self.total_mib,
        })
    }

    /// Refuses a request that could never fit, without reserving anything.
    pub fn check(&self, bytes: u64) -> Result<(), BudgetError> {
        match self.never_fits(mib(bytes)) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Reserves `bytes` now, or says why not: never waits.
    pub fn try_reserve(&self, bytes: u64) -> Result<Reservation, BudgetError> {
        let needed = mib(bytes);
        if let Some(error) = self.never_fits(needed) {
            return Err(error);
        }
        match Arc::clone(&self.free).try_acquire_many_owned(needed as u32) {
            Ok(permit) => Ok(Reservation {
                permit: Some(permit),
                budget: self.clone(),
            }),
            Err(_) => Err(BudgetError::Busy {
                needed,
                free: self.free.available_permits() as u64,
                budget: self.total_mib,
            }),
        }
    }

    /// Reserves `bytes`, waiting up to `patience` for other work to give memory back.
    pub async fn reserve(
        &self,
        bytes: u64,
        patience: Duration,
    ) -> Result<Reservation, BudgetError> {
        let needed = mib(bytes);
        if let Some(error) = self.never_fits(needed) {
            return Err(error);
        }
        let acquire = Arc::clone(&self.free).acquire_many_owned(needed as u32);
        match tokio::time::timeout(patience, acquire).await {
            Ok(Ok(permit)) => Ok(Reservation {
                permit: Some(permit),
                budget: self.clone(),
            }),
            Ok(Err(_)) | Err(_) => Err(BudgetError::Busy {
                needed,
                free: self.free.available_permits() as u64,
                budget: self.total_mib,
            }),
        }
    }

    /// An empty reservation, to grow as data arrives (an upload).
    pub fn empty(&self) -> Reservation {
        Reservation {
            permit: None,
            budget: self.clone(),
        }
    }
}

impl Reservation {
    /// MiB held.
    pub fn held_mib(&self) -> u64 {
        self.permit.as_ref().map_or(0, |p| p.num_permits() as u64)
    }

    /// The MiB still missing to cover `bytes` in all (`None`: none), or why they can
    /// never be had.
    fn missing(&self, bytes: u64) -> Result<Option<(u64, u32)>, BudgetError> {
        let needed = mib(bytes);
        let held = self.held_mib();
        if needed <= held {
            return Ok(None);
        }
        match self.budget.never_fits(needed) {
            Some(error) => Err(error),
            None => Ok(Some((needed, (needed - held) as u32))),
        }
    }

    fn busy(&self, needed: u64) -> BudgetError {
        BudgetError::Busy {
            needed,
            free: self.budget.free.available_permits() as u64,
            budget: self.budget.total_mib,
        }
    }

    /// Grows the reservation to cover `bytes` in all, or says why it cannot.
    pub fn grow_to(&mut self, bytes: u64) -> Result<(), BudgetError> {
        let Some((needed, more)) = self.missing(bytes)? else {
            return Ok(());
        };
        let more = Arc::clone(&self.budget.free)
            .try_acquire_many_owned(more)
            .map_err(|_| self.busy(needed))?;
        self.merge(more);
        Ok(())
    }

    /// Grows the reservation to cover `bytes` in all, waiting up to `patience` for other
    /// work to give memory back.
    pub async fn grow_to_within(
        &mut self,
        bytes: u64,
        patience: Duration,
    ) -> Result<(), BudgetError> {
        let Some((needed, more)) = self.missing(bytes)? else {
            return Ok(());
        };
        let acquire = Arc::clone(&self.budget.free).acquire_many_owned(more);
        match tokio::time::timeout(patience, acquire).await {
            Ok(Ok(more)) => {
                self.merge(more);
                Ok(())
            }
            Ok(Err(_)) | Err(_) => Err(self.busy(needed)),
        }
    }

    fn merge(&mut self, more: OwnedSemaphorePermit) {
        match &mut self.permit {
            Some(permit) => permit.merge(more),
            None => self.permit = Some(more),
        }
    }
}

fn cgroup_limit() -> Option<u64> {
    // cgroup v2, then v1; "max" or a huge v1 value means no limit.
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
    let v1 = std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes").ok();
    [v2, v1]
        .into_iter()
        .flatten()
        .filter_map(|text| text.trim().parse::<u64>().ok())
        .find(|&limit| limit < (1 << 50))
}

fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = MemoryBudget::new(100 * UNIT);
        let first = budget.try_reserve(60 * UNIT).unwrap();
        assert!(matches!(
            budget.try_reserve(50 * UNIT),
            Err(BudgetError::Busy {
                needed: 50,
                free: 40,
                ..
            })
        ));
        drop(first);
        assert!(budget.try_reserve(50 * UNIT).is_ok());
        assert!(matches!(
            budget.try_reserve(101 * UNIT),
            Err(BudgetError::NeverFits {
                needed: 101,
                budget: 100
            })
        ));
        assert!(budget.check(100 * UNIT).is_ok());
        assert!(budget.check(101 * UNIT).is_err());
    }

    #[test]
    fn an_upload_grows_its_reservation_chunk_by_chunk() {
        let budget = MemoryBudget::new(10 * UNIT);
        let mut upload = budget.empty();
        assert_eq!(upload.held_mib(), 0);
        upload.grow_to(UNIT / 2).unwrap();
        upload.grow_to(3 * UNIT).unwrap();
        assert_eq!(upload.held_mib(), 3);
        let other = budget.try_reserve(7 * UNIT).unwrap();
        assert!(matches!(
            upload.grow_to(4 * UNIT),
            Err(BudgetError::Busy { .. })
        ));
        drop(other);
        upload.grow_to(4 * UNIT).unwrap();
        assert!(matches!(
            upload.grow_to(11 * UNIT),
            Err(BudgetError::NeverFits { .. })
        ));
        drop(upload);
        assert!(budget.try_reserve(10 * UNIT).is_ok());
    }

    #[tokio::test]
    async fn waiting_reservations_get_memory_when_it_is_given_back() {
        let budget = MemoryBudget::new(10 * UNIT);
        let held = budget.try_reserve(8 * UNIT).unwrap();
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(5 * UNIT, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiter.await.unwrap().is_ok());
        let short = budget.reserve(20 * UNIT, Duration::from_millis(1)).await;
        assert!(matches!(short, Err(BudgetError::NeverFits { .. })));
        let mut growing = budget.empty();
        let blocker = budget.try_reserve(9 * UNIT).unwrap();
        let late = growing
            .grow_to_within(2 * UNIT, Duration::from_millis(5))
            .await;
        assert!(matches!(late, Err(BudgetError::Busy { .. })));
        drop(blocker);
        growing
            .grow_to_within(2 * UNIT, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(growing.held_mib(), 2);
    }

    #[test]
    fn the_detected_budget_is_below_the_machine() {
        let budget = MemoryBudget::detect();
        assert!(budget.total_bytes() > 0);
        if let Some(memory) = physical_memory() {
            assert!(budget.total_bytes() <= memory);
        }
    }
}
