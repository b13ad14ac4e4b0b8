// A generated pipeline crate as `pulsec` writes it (its `main` is not run: the pipeline would
// need its inputs); `generated.rs` is that crate's `main.rs` without its leading comment and
// crate attributes.
#![allow(non_snake_case, unused_variables, unused_imports, dead_code, clippy::all)]

mod pipeline {
    include!("generated.rs");
}

fn main() {}
