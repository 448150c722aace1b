//! The lifecycle steps of a live subscription: trial, renewals, dunning, plan changes,
//! cancelation, pause, unpaid.

use super::*;

impl Actor<'_> {
    /// Moves the test clock to a random point in the first half of what is left of the
    /// period, if at least two days are left.
    pub(super) fn advance_within(&mut self, period_end: i64) -> bool {
        let left = period_end - self.sim;
        if left < 2 * DAY {
            return false;
        }
        self.sim += self.rng.random_range(HOUR..left / 2);
        true
    }

    /// One step of the subscription's life; true when the journey stops here.
    pub(super) fn step(&mut self, live: &mut Live) -> bool {
        match live.sub.status {
            SubscriptionStatus::Incomplete => self.incomplete_step(live),
            SubscriptionStatus::Trialing => self.trial_step(live),
            SubscriptionStatus::Active => self.active_step(live),
            SubscriptionStatus::PastDue => self.past_due_step(live),
            SubscriptionStatus::Unpaid => return self.unpaid_step(live),
            SubscriptionStatus::Paused => self.paused_step(live),
            _ => return true,
        }
        false
    }

    pub(super) fn incomplete_step(&mut self, live: &mut Live) {
        let sub = &mut live.sub;
        let before = sub.clone();
        let at = self.snapshot_second(&sub.id);
        if self.rng.random_bool(0.7) {
            self.sim += self.rng.random_range(HOUR..20 * HOUR);
            let mut invoice = live
                .open
                .take()
                .unwrap_or_else(|| panic!("no open invoice"));
            self.attempt(&mut invoice, true, false, at);
            sub.status = SubscriptionStatus::Active;
            self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
        } else {
            self.sim = sub.created + 23 * HOUR;
            sub.status = SubscriptionStatus::IncompleteExpired;
            sub.ended_at = Some(self.sim);
            self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
        }
    }

    pub(super) fn trial_step(&mut self, live: &mut Live) {
        let (_, trial_end) = live.sub.trial.unwrap_or((self.sim, self.sim));
        let sub_id = live.sub.id.clone();
        if !live.trial_will_end_sent && trial_end - 3 * DAY > self.sim && self.rng.random_bool(0.85)
        {
            self.sim = trial_end - 3 * DAY;
            live.trial_will_end_sent = true;
            let at = self.snapshot_second(&sub_id);
            self.snapshot(at, "customer.subscription.trial_will_end", &live.sub, None);
            return;
        }
        if self.rng.random_bool(0.15) && self.advance_within(trial_end) {
            self.toggle_cancel(live);
            return;
        }
        self.sim = trial_end;
        let before = live.sub.clone();
        let sub = &mut live.sub;
        if sub.cancel_at_period_end {
            self.delete(live, trial_end, "cancellation_requested");
            return;
        }
        let at = self.snapshot_second(&sub_id);
        match self.rng.random_range(0..100) {
            0..65 => {
                let mut invoice = self.renew(sub, SubscriptionStatus::Active);
                self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
                let paid_at = at + self.rng.random_range(0..=3);
                self.attempt(&mut invoice, true, false, paid_at);
            }
            65..85 => {
                let mut invoice = self.renew(sub, SubscriptionStatus::PastDue);
                self.attempt(&mut invoice, false, false, at);
                self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
                live.open = Some(invoice);
            }
            85..95 => {
                // No payment method at the trial's end: paused (the fixtures' story).
                sub.status = SubscriptionStatus::Paused;
                sub.period = (trial_end, add_interval(trial_end, sub.price));
                self.snapshot(at, "customer.subscription.paused", sub, Some(&before));
            }
            _ => self.delete(live, trial_end, "cancellation_requested"),
        }
    }

    /// Moves `sub` into its next period with `status` and returns that period's invoice.
    pub(super) fn renew(
        &mut self,
        sub: &mut SubscriptionObj,
        status: SubscriptionStatus,
    ) -> InvoiceObj {
        let previous = sub.period;
        let start = previous.1;
        sub.period = (start, add_interval(start, sub.price));
        sub.status = status;
        let line = self.period_line(sub.price, sub.period);
        let invoice = self.invoice(sub, "subscription_cycle", vec![line], previous);
        sub.latest_invoice = Some(invoice.id.clone());
        invoice
    }

    pub(super) fn active_step(&mut self, live: &mut Live) {
        let roll = self.rng.random_range(0..100);
        let period_end = live.sub.period.1;
        if (45..80).contains(&roll) && self.advance_within(period_end) {
            match roll {
                45..60 => self.change_plan(live),
                60..75 => self.toggle_cancel(live),
                _ => {
                    let now = self.sim;
                    self.delete(live, now, "cancellation_requested");
                }
            }
            return;
        }
        if roll >= 80 && period_end - self.sim > 2 * DAY {
            // A quiet step: only side events, if any.
            return;
        }
        // The period ends.
        self.sim = period_end;
        if live.sub.cancel_at_period_end {
            self.delete(live, period_end, "cancellation_requested");
            return;
        }
        let before = live.sub.clone();
        let at = self.snapshot_second(&live.sub.id);
        let mut invoice = self.renew(&mut live.sub, SubscriptionStatus::Active);
        self.snapshot(
            at,
            "customer.subscription.updated",
            &live.sub,
            Some(&before),
        );
        if self.rng.random_bool(0.75) {
            let paid_at = at + self.rng.random_range(0..=4);
            self.attempt(&mut invoice, true, false, paid_at);
        } else {
            self.wall += self.rng.random_range(1..=4);
            let before = live.sub.clone();
            let at = self.snapshot_second(&live.sub.id);
            self.sim += HOUR;
            self.attempt(&mut invoice, false, false, at);
            live.sub.status = SubscriptionStatus::PastDue;
            self.snapshot(
                at,
                "customer.subscription.updated",
                &live.sub,
                Some(&before),
            );
            live.open = Some(invoice);
        }
    }

    /// A plan change with `proration_behavior=always_invoice`: the update and its paid
    /// proration invoice in one second. A change of interval (or, sometimes, a reset billing
    /// cycle anchor) starts a new period.
    pub(super) fn change_plan(&mut self, live: &mut Live) {
        let old = live.sub.price;
        let others: Vec<&'static Price> = PRICES.iter().copied().filter(|p| *p != old).collect();
        let new = others[self.rng.random_range(0..others.len())];
        let reset = old.interval != new.interval || self.rng.random_bool(0.3);
        let now = self.sim;
        let (start, end) = live.sub.period;
        let left = (end - now) as f64 / (end - start) as f64;
        let currency = self.account.currency.clone();
        let on = day_text(now);
        let credit = -((old.amount(&currency) as f64 * left).round() as i64);
        let mut lines = vec![self.line(
            old,
            credit,
            (now, end),
            true,
            format!("Unused time on {} after {on}", old.product_name),
        )];
        let before = live.sub.clone();
        let sub = &mut live.sub;
        sub.price = new;
        if reset {
            sub.period = (now, add_interval(now, new));
            sub.billing_cycle_anchor = now;
            lines.push(self.period_line(new, sub.period));
        } else {
            let charge = (new.amount(&currency) as f64 * left).round() as i64;
            lines.push(self.line(
                new,
                charge,
                (now, end),
                true,
                format!("Remaining time on {} after {on}", new.product_name),
            ));
        }
        let mut invoice = self.invoice(sub, "subscription_update", lines, (now, now));
        sub.latest_invoice = Some(invoice.id.clone());
        let at = self.snapshot_second(&sub.id);
        self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
        self.attempt(&mut invoice, true, false, at);
    }

    pub(super) fn toggle_cancel(&mut self, live: &mut Live) {
        let before = live.sub.clone();
        let sub = &mut live.sub;
        sub.cancel_at_period_end = !sub.cancel_at_period_end;
        if sub.cancel_at_period_end {
            sub.cancel_at = Some(sub.period.1);
            sub.canceled_at = Some(self.sim);
        } else {
            sub.cancel_at = None;
            sub.canceled_at = None;
        }
        let at = self.snapshot_second(&sub.id);
        self.snapshot(at, "customer.subscription.updated", sub, Some(&before));
    }

    /// `customer.subscription.deleted`, ended at `ended` (simulated).
    pub(super) fn delete(&mut self, live: &mut Live, ended: i64, reason: &'static str) {
        let sub = &mut live.sub;
        sub.status = SubscriptionStatus::Canceled;
        sub.canceled_at = Some(sub.canceled_at.unwrap_or(ended));
        sub.ended_at = Some(ended);
        sub.cancellation_reason = Some(reason);
        let at = self.snapshot_second(&sub.id);
        self.snapshot(at, "customer.subscription.deleted", sub, None);
    }

    pub(super) fn past_due_step(&mut self, live: &mut Live) {
        let mut invoice = live
            .open
            .take()
            .unwrap_or_else(|| panic!("past_due without an open invoice"));
        self.sim += 3 * DAY;
        let retries_left = invoice.attempt_count < 4;
        let roll = self.rng.random_range(0..100);
        let before = live.sub.clone();
        match roll {
            0..40 if retries_left => {
                // Smart Retries: another failed attempt, the subscription stays past_due.
                let at = self.wall;
                self.attempt(&mut invoice, false, false, at);
                live.open = Some(invoice);
            }
            0..55 => {
                let at = self.snapshot_second(&live.sub.id);
                self.attempt(&mut invoice, true, false, at);
                live.sub.status = SubscriptionStatus::Active;
                self.snapshot(
                    at,
                    "customer.subscription.updated",
                    &live.sub,
                    Some(&before),
                );
            }
            55..80 => {
                let at = self.snapshot_second(&live.sub.id);
                self.attempt(&mut invoice, false, true, at);
                live.sub.status = SubscriptionStatus::Unpaid;
                self.snapshot(
                    at,
                    "customer.subscription.updated",
                    &live.sub,
                    Some(&before),
                );
                live.open = Some(invoice);
            }
            _ => {
                let at = self.snapshot_second(&live.sub.id);
                self.attempt(&mut invoice, false, true, at);
                let now = self.sim;
                self.delete(live, now, "payment_failed");
            }
        }
    }

    pub(super) fn unpaid_step(&mut self, live: &mut Live) -> bool {
        self.sim += self.rng.random_range(1..=10) * DAY;
        match self.rng.random_range(0..100) {
            0..35 => {
                let mut invoice = live
                    .open
                    .take()
                    .unwrap_or_else(|| panic!("unpaid without an open invoice"));
                let before = live.sub.clone();
                let at = self.snapshot_second(&live.sub.id);
                self.attempt(&mut invoice, true, false, at);
                live.sub.status = SubscriptionStatus::Active;
                self.snapshot(
                    at,
                    "customer.subscription.updated",
                    &live.sub,
                    Some(&before),
                );
                false
            }
            35..70 => {
                let now = self.sim;
                self.delete(live, now, "payment_failed");
                false
            }
            _ => true,
        }
    }

    pub(super) fn paused_step(&mut self, live: &mut Live) {
        self.sim += self.rng.random_range(1..=20) * DAY;
        if self.rng.random_bool(0.4) {
            let now = self.sim;
            self.delete(live, now, "cancellation_requested");
            return;
        }
        let before = live.sub.clone();
        let now = self.sim;
        let sub = &mut live.sub;
        sub.status = SubscriptionStatus::Active;
        sub.period = (now, add_interval(now, sub.price));
        sub.billing_cycle_anchor = now;
        let line = self.period_line(sub.price, sub.period);
        let mut invoice = self.invoice(sub, "subscription_update", vec![line], (now, now));
        sub.latest_invoice = Some(invoice.id.clone());
        let at = self.snapshot_second(&sub.id);
        self.snapshot(at, "customer.subscription.resumed", sub, Some(&before));
        self.wall += self.rng.random_range(1..=3);
        if self.rng.random_bool(0.8) {
            let at = self.wall;
            self.attempt(&mut invoice, true, false, at);
        } else {
            let before = live.sub.clone();
            let at = self.snapshot_second(&live.sub.id);
            self.attempt(&mut invoice, false, false, at);
            live.sub.status = SubscriptionStatus::PastDue;
            self.snapshot(
                at,
                "customer.subscription.updated",
                &live.sub,
                Some(&before),
            );
            live.open = Some(invoice);
        }
    }
}
