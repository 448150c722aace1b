//! Billing use cases.
