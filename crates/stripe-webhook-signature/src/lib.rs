//! Stripe webhook signature verification.
