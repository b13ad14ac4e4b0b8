//! Property tests: decoding any text as a `Val` never panics, and whatever decodes writes back
//! (through `write_val`) as JSON that decodes to an equal value.

use proptest::prelude::*;
use pulse_stdlib::json::write_val;
use pulse_stdlib::text::text_form;
use pulse_stdlib::Val;

/// Arbitrary JSON documents, including awkward numbers and escapes.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |number| number.is_finite()).prop_map(serde_json::Value::from),
        ".*".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(".{0,4}", inner, 0..4)
                .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
        ]
    })
}

fn assert_round_trip(text: &str) {
    if let Ok(value) = serde_json::from_str::<Val>(text) {
        let mut written = String::new();
        write_val(&mut written, &value);
        let back: Val = serde_json::from_str(&written).expect("write_val writes valid JSON");
        assert_eq!(back, value, "{text} -> {written}");
        // The text form must not panic either, and is never empty.
        assert!(!text_form(&value).is_empty() || matches!(value, Val::Str(_)));
    }
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(text in ".*") {
        assert_round_trip(&text);
    }

    #[test]
    fn json_like_strings_never_panic(text in r#"[\[\]{}",:0-9eE.+\-a-z\\ ]{0,24}"#) {
        assert_round_trip(&text);
    }

    #[test]
    fn json_documents_round_trip(document in json_value()) {
        let text = document.to_string();
        let value: Val = serde_json::from_str(&text).expect("serde_json output is valid");
        let mut written = String::new();
        write_val(&mut written, &value);
        let back: Val = serde_json::from_str(&written).expect("valid JSON");
        prop_assert_eq!(back, value);
    }

    #[test]
    fn floats_round_trip_exactly(number in any::<f64>().prop_filter("finite", |number| number.is_finite())) {
        let mut written = String::new();
        write_val(&mut written, &Val::Float(number));
        let back: Val = serde_json::from_str(&written).expect("valid JSON");
        prop_assert_eq!(back, Val::Float(number));
    }
}
