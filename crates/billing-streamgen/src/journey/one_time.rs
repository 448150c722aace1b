//! One-time purchases on the side of a subscription: payment-mode Checkout and refunds.

use super::*;

impl Actor<'_> {
    /// A one-time purchase or a refund, now and then.
    pub(super) fn side_events(&mut self) {
        if self.rng.random_bool(0.07) {
            self.purchase();
        }
        if !self.refundable.is_empty() && self.rng.random_bool(0.08) {
            self.refund();
        }
    }

    /// A payment-mode Checkout: `payment_intent.succeeded` and `checkout.session.completed`;
    /// returns the paid charge (which later refunds or disputes name).
    pub fn purchase(&mut self) -> ChargeObj {
        let (pi, charge) = self.account.ids.payment(self.rng);
        let amount = [900, 2500, 4900, 12000][self.rng.random_range(0..4)];
        let intent = PaymentIntentObj {
            id: pi.clone(),
            customer: self.customer.id.clone(),
            amount,
            succeeded: true,
            latest_charge: charge.clone(),
            invoice: None,
            metadata_user: Some(self.customer.user.clone()),
            description: "Credit pack",
            created: self.sim,
        };
        let session = CheckoutObj {
            id: self
                .account
                .ids
                .checkout_session(self.rng, self.account.livemode),
            mode: CheckoutMode::Payment,
            customer: self.customer.id.clone(),
            user: self.customer.user.clone(),
            subscription: None,
            invoice: None,
            payment_intent: Some(pi.clone()),
            amount_total: amount,
            payment_status: "paid",
            created: self.sim - self.rng.random_range(60..600),
        };
        let at = self.wall;
        self.emit(at, Intent::Payment(intent));
        let at = at + self.rng.random_range(0..=1);
        self.emit(at, Intent::Checkout(session));
        let paid = ChargeObj {
            id: charge,
            payment_intent: pi,
            customer: self.customer.id.clone(),
            amount,
            amount_refunded: 0,
            previous_refunded: 0,
            invoice: None,
            description: "Credit pack",
            created: self.sim,
        };
        self.refundable.push(paid.clone());
        paid
    }

    /// `charge.refunded` of a paid charge, carrying its cumulative refunded amount.
    pub(super) fn refund(&mut self) {
        let index = self.rng.random_range(0..self.refundable.len());
        let charge = &self.refundable[index];
        let remaining = charge.amount - charge.amount_refunded;
        if remaining <= 0 {
            return;
        }
        let refund = if self.rng.random_bool(0.4) {
            remaining
        } else {
            self.rng.random_range(1..=remaining)
        };
        let mut charge = charge.clone();
        charge.previous_refunded = charge.amount_refunded;
        charge.amount_refunded += refund;
        self.refundable[index] = charge.clone();
        self.emit(self.wall, Intent::ChargeRefunded(charge));
    }
}
