# Developer recipes. CI runs `.ci/run`, which runs the same checks.

# List the recipes.
default:
    @just --list

# Format every crate.
fmt:
    cargo fmt --all

# Clippy on all targets and features, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# The build without the `tls` feature.
no-tls:
    cargo clippy -p uno-db --no-default-features --features sync,async -- -D warnings
    cargo test -p uno-db-core --no-default-features --lib

# The test suite (the README's test command).
test:
    cargo test --workspace --all-features

# API docs, warnings as errors.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps

# Everything CI runs.
ci:
    bash .ci/run
