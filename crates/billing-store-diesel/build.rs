//! Rebuilds the crate when a migration is added or changed: `embed_migrations!` reads the
//! migration directories at compile time, and Cargo tracks only the files it has already seen.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
