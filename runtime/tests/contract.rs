//! The contract between generated code and the runtime, checked by compiling: a checked-in
//! generated crate (`contract/generated.rs`, the code `pulsec` writes for
//! `examples/cart-abandonment`; `tests/tests/examples.rs` keeps it current) compiles against
//! `pulse_runtime::generated` alone, and code that reaches past that facade into the runtime's
//! internals does not.

#[test]
fn generated_code_compiles_against_the_facade_and_nothing_else() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/contract/pass.rs");
    cases.compile_fail("tests/contract/past_the_facade.rs");
}
