//! The reconciliation cursor (`reconcile_cursors`): one row, named `events`, saying how far the
//! catch-up from Stripe's Events API has applied and when it last succeeded.

use async_trait::async_trait;
use billing_ports::{ReconcileCursor, ReconcileTx, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::schema::{Stamp, reconcile_cursors, stamp, time};
use crate::tx::{Tx, on_conn};

/// The name of the Events API cursor's row.
const EVENTS: &str = "events";

#[derive(Queryable, Selectable)]
#[diesel(table_name = reconcile_cursors)]
struct CursorRow {
    event_id: Option<String>,
    event_created: Option<Stamp>,
    last_success_at: Option<Stamp>,
}

#[async_trait]
impl ReconcileTx for Tx<'_> {
    async fn reconcile_cursor(&mut self) -> Result<Option<ReconcileCursor>, StoreError> {
        let row: Option<CursorRow> = on_conn!(self, |c| reconcile_cursors::table
            .find(EVENTS)
            .select(CursorRow::as_select())
            .get_result(c)
            .await
            .optional())?;
        Ok(row.map(|row| ReconcileCursor {
            event_id: row.event_id,
            event_created: time(row.event_created),
            last_success_at: time(row.last_success_at),
        }))
    }

    async fn save_reconcile_cursor(
        &mut self,
        cursor: &ReconcileCursor,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use reconcile_cursors::dsl as r;
        let values = (
            r::event_id.eq(cursor.event_id.as_deref()),
            r::event_created.eq(stamp(cursor.event_created)),
            r::last_success_at.eq(stamp(cursor.last_success_at)),
            r::updated_at.eq(Stamp(at)),
        );
        let upsert = diesel::insert_into(r::reconcile_cursors)
            .values((r::name.eq(EVENTS), values))
            .on_conflict(r::name)
            .do_update()
            .set(values);
        on_conn!(self, |c| upsert.execute(c).await)?;
        Ok(())
    }
}
