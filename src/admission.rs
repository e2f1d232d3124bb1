//! Admission: every costly resource a request takes (request body bytes, decoded pixels, model calls, large
//! index scans) is granted by a `Gate` of fixed capacity, so that a flood of requests queues instead of
//! exhausting memory or oversubscribing the cores. A request holds its `Ticket` for as long as it holds the
//! resource (the ticket lives beside the pixels it pays for) and gives it back when dropped.
//!
//! Gates are FIFO (tokio's semaphore is fair), so a large request is not starved by small ones. A request
//! asking for more than the whole capacity is charged the whole capacity: it waits until the gate is empty
//! and then runs alone, rather than being refused (legitimate images up to the decoder's own limits always
//! pass). Each gate reports its capacity, what is in use and how many requests wait, as metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Memory gates count in KiB so that a u32 permit count covers terabytes.
const KIB: u64 = 1024;

pub struct Gate {
    name: &'static str,
    semaphore: Arc<Semaphore>,
    /// Capacity in units (KiB for memory gates, calls otherwise).
    capacity: u32,
    /// What one unit is worth in the metrics (1024 for memory gates: reported in bytes).
    unit_value: u64,
    waiting: AtomicUsize,
}

/// A granted share of a gate; dropping it gives the share back.
pub struct Ticket {
    gate: Arc<Gate>,
    /// `None` only while being dropped.
    permit: Option<OwnedSemaphorePermit>,
}

/// The gate was closed (only at shutdown).
#[derive(Debug, thiserror::Error)]
#[error("the {0} gate is closed")]
pub struct Closed(pub &'static str);

impl Gate {
    /// A gate of `calls` concurrent holders.
    pub fn calls(name: &'static str, calls: usize) -> Arc<Self> {
        Self::new(name, calls.clamp(1, u32::MAX as usize) as u32, 1)
    }

    /// A gate of `bytes` of memory.
    pub fn bytes(name: &'static str, bytes: u64) -> Arc<Self> {
        let kib = (bytes / KIB).clamp(1, u64::from(u32::MAX >> 3)) as u32;
        Self::new(name, kib, KIB)
    }

    fn new(name: &'static str, capacity: u32, unit_value: u64) -> Arc<Self> {
        let gate = Arc::new(Self {
            name,
            semaphore: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            unit_value,
            waiting: AtomicUsize::new(0),
        });
        metrics::gauge!("iai_admission_capacity", "gate" => name)
            .set((u64::from(capacity) * unit_value) as f64);
        gate.report();
        gate
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Capacity in bytes (memory gates) or calls.
    pub fn capacity(&self) -> u64 {
        u64::from(self.capacity) * self.unit_value
    }

    /// Bytes (or calls) granted now.
    pub fn in_use(&self) -> u64 {
        let free = self.semaphore.available_permits() as u64;
        (u64::from(self.capacity) - free.min(u64::from(self.capacity))) * self.unit_value
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Wait for one call's share.
    pub async fn enter(self: &Arc<Self>) -> Result<Ticket, Closed> {
        self.acquire(1).await
    }

    /// Wait for `bytes` of a memory gate (all of it when `bytes` exceeds the capacity).
    pub async fn enter_bytes(self: &Arc<Self>, bytes: u64) -> Result<Ticket, Closed> {
        let units = bytes.div_ceil(self.unit_value).max(1);
        self.acquire(units.min(u64::from(self.capacity)) as u32)
            .await
    }

    async fn acquire(self: &Arc<Self>, units: u32) -> Result<Ticket, Closed> {
        // Counted as waiting only while actually queued; a dropped request stops waiting at once.
        let permit = match self.semaphore.clone().try_acquire_many_owned(units) {
            Ok(permit) => permit,
            Err(_) => {
                let queued = Queued::new(self);
                let permit = self
                    .semaphore
                    .clone()
                    .acquire_many_owned(units)
                    .await
                    .map_err(|_| Closed(self.name))?;
                drop(queued);
                permit
            }
        };
        self.report();
        Ok(Ticket {
            gate: self.clone(),
            permit: Some(permit),
        })
    }

    /// `bytes` of a memory gate now, or `None` when they are not free (never waits, so a caller that already
    /// holds part of the gate cannot end up waiting on another that does the same).
    pub fn try_enter_bytes(self: &Arc<Self>, bytes: u64) -> Option<Ticket> {
        let units = bytes.div_ceil(self.unit_value).max(1);
        let units = u32::try_from(units).ok()?;
        let permit = self.semaphore.clone().try_acquire_many_owned(units).ok()?;
        self.report();
        Some(Ticket {
            gate: self.clone(),
            permit: Some(permit),
        })
    }

    fn report(&self) {
        metrics::gauge!("iai_admission_in_use", "gate" => self.name).set(self.in_use() as f64);
        metrics::gauge!("iai_admission_queue_depth", "gate" => self.name)
            .set(self.waiting() as f64);
    }
}

/// Counts a request as queued at a gate for as long as it lives.
struct Queued<'a>(&'a Gate);

impl<'a> Queued<'a> {
    fn new(gate: &'a Gate) -> Self {
        gate.waiting.fetch_add(1, Ordering::Relaxed);
        gate.report();
        Self(gate)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
        self.0.report();
    }
}

impl Ticket {
    /// Split off up to `bytes` of this ticket (at most all but one unit, so that this one stays valid).
    pub fn split_bytes(&mut self, bytes: u64) -> Option<Ticket> {
        let own = self.permit.as_mut()?;
        let held = own.num_permits() as u64;
        let units = bytes
            .div_ceil(self.gate.unit_value)
            .min(held.saturating_sub(1));
        if units == 0 {
            return None;
        }
        let permit = own.split(units as usize)?;
        Some(Ticket {
            gate: self.gate.clone(),
            permit: Some(permit),
        })
    }

    /// Add another ticket of the same gate to this one.
    pub fn merge(&mut self, mut other: Ticket) {
        if let (Some(own), Some(theirs)) = (self.permit.as_mut(), other.permit.take()) {
            own.merge(theirs);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // Give the share back first, then report: the gauge reads the semaphore after the return.
        drop(self.permit.take());
        self.gate.report();
    }
}

/// Total memory of this machine in bytes (from /proc/meminfo), for sizing default budgets.
pub fn total_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * KIB)
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_memory_gate_queues_beyond_its_capacity_and_frees_on_drop() {
        let gate = Gate::bytes("test", 10 * KIB);
        let first = gate.enter_bytes(6 * KIB).await.unwrap();
        assert_eq!(gate.in_use(), 6 * KIB);
        let second = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter_bytes(6 * KIB).await.map(|_| ()) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(gate.waiting(), 1, "the second request must wait");
        drop(first);
        second.await.unwrap().unwrap();
        assert_eq!((gate.waiting(), gate.in_use()), (0, 0));
    }

    #[tokio::test]
    async fn a_request_larger_than_the_capacity_runs_alone() {
        let gate = Gate::bytes("test", 10 * KIB);
        let huge = gate.enter_bytes(100 * KIB).await.unwrap();
        assert_eq!(gate.in_use(), 10 * KIB);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), gate.enter_bytes(1))
                .await
                .is_err()
        );
        drop(huge);
        gate.enter_bytes(1).await.unwrap();
    }

    #[tokio::test]
    async fn tickets_grow_split_and_come_back_whole() {
        let gate = Gate::bytes("test", 10 * KIB);
        let mut ticket = gate.try_enter_bytes(4 * KIB).unwrap();
        ticket.merge(gate.try_enter_bytes(4 * KIB).unwrap());
        assert_eq!(gate.in_use(), 8 * KIB);
        assert!(
            gate.try_enter_bytes(4 * KIB).is_none(),
            "only 2 KiB are free"
        );
        let share = ticket.split_bytes(3 * KIB).unwrap();
        drop(ticket);
        assert_eq!(gate.in_use(), 3 * KIB);
        drop(share);
        assert_eq!(gate.in_use(), 0);
    }
}
