//! HTTP layer.
