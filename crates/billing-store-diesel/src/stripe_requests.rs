//! Outgoing Stripe requests (`stripe_requests`): one row per operation and stable id, holding
//! the idempotency key a retry sends again and, once known, Stripe's answer.

use async_trait::async_trait;
use billing_ports::{Cause, StoreError, StripeRequest, StripeRequestTx};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::error::parse_stored;
use crate::prepared::cached;
use crate::schema::{Stamp, stripe_requests};
use crate::tx::{Tx, on_conn};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = stripe_requests)]
struct StripeRequestRow {
    operation: String,
    stable_id: String,
    idempotency_key: String,
    fingerprint: String,
    status: String,
    stripe_id: Option<String>,
    response: Option<String>,
    last_error: Option<String>,
}

fn stripe_request_row(r: &StripeRequest) -> StripeRequestRow {
    StripeRequestRow {
        operation: r.operation.clone(),
        stable_id: r.stable_id.clone(),
        idempotency_key: r.idempotency_key.clone(),
        fingerprint: r.fingerprint.clone(),
        status: r.status.as_str().to_owned(),
        stripe_id: r.stripe_id.clone(),
        response: r.response.clone(),
        last_error: r.last_error.clone(),
    }
}

fn stripe_request_record(row: StripeRequestRow) -> Result<StripeRequest, StoreError> {
    Ok(StripeRequest {
        status: parse_stored(&row.status)?,
        operation: row.operation,
        stable_id: row.stable_id,
        idempotency_key: row.idempotency_key,
        fingerprint: row.fingerprint,
        stripe_id: row.stripe_id,
        response: row.response,
        last_error: row.last_error,
    })
}

#[async_trait]
impl StripeRequestTx for Tx<'_> {
    async fn begin_stripe_request(
        &mut self,
        request: &StripeRequest,
        at: DateTime<Utc>,
    ) -> Result<StripeRequest, StoreError> {
        use stripe_requests::dsl as r;
        let row = stripe_request_row(request);
        // Only the (operation, stable_id) conflict is expected; the same idempotency key under
        // another operation is a conflict error.
        let insert = cached(
            diesel::insert_into(r::stripe_requests)
                .values((
                    &row,
                    r::created_at.eq(Stamp(at)),
                    r::updated_at.eq(Stamp(at)),
                ))
                .on_conflict((r::operation, r::stable_id))
                .do_nothing(),
        );
        on_conn!(self, |c| insert.execute(c).await)?;
        let stored: StripeRequestRow = on_conn!(self, |c| r::stripe_requests
            .filter(r::operation.eq(&request.operation))
            .filter(r::stable_id.eq(&request.stable_id))
            .select(StripeRequestRow::as_select())
            .get_result(c)
            .await)?;
        stripe_request_record(stored)
    }

    async fn finish_stripe_request(
        &mut self,
        request: &StripeRequest,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use stripe_requests::dsl as r;
        let update = cached(
            diesel::update(
                r::stripe_requests
                    .filter(r::operation.eq(&request.operation))
                    .filter(r::stable_id.eq(&request.stable_id)),
            )
            .set((
                r::status.eq(request.status.as_str()),
                r::stripe_id.eq(request.stripe_id.as_deref()),
                r::response.eq(request.response.as_deref()),
                r::last_error.eq(request.last_error.as_deref()),
                r::updated_at.eq(Stamp(at)),
            )),
        );
        let updated = on_conn!(self, |c| update.execute(c).await)?;
        if updated == 0 {
            // An outcome with nowhere to go would be lost silently.
            return Err(StoreError::Query(Cause::msg(format!(
                "no stripe request {} {} to finish",
                request.operation, request.stable_id
            ))));
        }
        Ok(())
    }
}
