//! Integration tests of `billing-stripe`'s wire parsing: every fixture of both API-version
//! shapes and of `real-world/`, the version differences, error reporting, and panic-freedom
//! on arbitrary input.

mod errors;
mod fixtures;
mod fuzz;
mod lenient;
mod real_world;
mod shapes;
mod story;
