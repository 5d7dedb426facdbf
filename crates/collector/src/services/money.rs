//! Money: advertising cost per day and source, and revenue the CRM posts
//! back for calls; the reports divide one by the other. The rows arrive
//! validated (the HTTP edge reads uploads, `crate::http::money`; the demo
//! month writes its own).

use std::sync::Arc;

use crate::clock::Clock;
use crate::storage::StorageError;
use crate::storage::money::MoneyStore;
pub use crate::storage::money::{CostRow, MAX_AMOUNT, RevenueError, RevenuePost, RevenueRecorded, RevenueTarget};

#[derive(Clone)]
pub struct MoneyService {
    store: Arc<dyn MoneyStore>,
    clock: Arc<dyn Clock>,
}

impl MoneyService {
    pub fn new(store: Arc<dyn MoneyStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Upserts the rows in one transaction (a day uploaded again replaces
    /// its numbers). Blocking.
    pub fn upsert_costs(&self, rows: &[CostRow]) -> Result<usize, StorageError> {
        self.store.upsert_costs(rows, false, self.clock.as_ref())
    }

    /// Stores revenue for the call the post names, idempotently per deal id. Blocking.
    pub fn record_revenue(&self, post: &RevenuePost) -> Result<RevenueRecorded, RevenueError> {
        self.store.record_revenue(post, false, self.clock.as_ref())
    }
}
