//! The read side: balances per programme, donor and country, postings and
//! the trial balance, kept in tables beside the events and updated in the
//! same transaction as each append; rebuildable from the events alone.

pub mod balances;
pub mod db;
pub mod payment_lists;
pub mod rebuild;
pub mod rows;

use ledger_core::chain::EventRecord;
use ledger_core::domain::{EventBody, FinalPaymentLists, State};
use ledger_core::store::one_statement::Insert;
use ledger_core::store::{BoxFuture, Projector};
use sqlx::AnyConnection;

use crate::rows::Changes;

/// The projector the store calls inside every append transaction.
#[derive(Clone, Copy, Debug, Default)]
pub struct LedgerProjector;

impl Projector for LedgerProjector {
    fn load_state<'c>(
        &'c self,
        connection: &'c mut AnyConnection,
        known: &'c FinalPaymentLists,
    ) -> BoxFuture<'c, Result<State, sqlx::Error>> {
        Box::pin(db::load_state(connection, known))
    }

    fn apply<'c>(
        &'c self,
        connection: &'c mut AnyConnection,
        events: &'c [(EventRecord, EventBody)],
    ) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move { db::write_changes(connection, changes_of(events)).await })
    }

    fn inserts<'c>(
        &'c self,
        connection: &'c mut AnyConnection,
        events: &'c [(EventRecord, EventBody)],
    ) -> BoxFuture<'c, Result<Vec<Insert>, sqlx::Error>> {
        Box::pin(async move { db::inserts(connection, &mut changes_of(events)).await })
    }
}

fn changes_of(events: &[(EventRecord, EventBody)]) -> Changes {
    let mut changes = Changes::default();
    for (record, body) in events {
        changes.add_event(record, body);
    }
    changes
}
