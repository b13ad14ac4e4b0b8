//! Operators of conditions and expressions: comparisons (G14–G16), `in` (G17), `contains`,
//! `startsWith`, `endsWith` (G18), regex search (G19), truthiness (G22) and arithmetic (G23).
//! Every comparison with an absent or null side is false (§3).

use std::cmp::Ordering;

use crate::decode;
use crate::val::Val;

/// Compares two numbers exactly, also an i64 against an f64 (no rounding through f64).
pub fn compare_numbers(left: &Val<'_>, right: &Val<'_>) -> Option<Ordering> {
    match (left, right) {
        (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
        (Val::Float(a), Val::Float(b)) => a.partial_cmp(b),
        (Val::Int(a), Val::Float(b)) => compare_int_float(*a, *b),
        (Val::Float(a), Val::Int(b)) => compare_int_float(*b, *a).map(Ordering::reverse),
        _ => None,
    }
}

fn compare_int_float(int: i64, float: f64) -> Option<Ordering> {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if float.is_nan() {
        return None;
    }
    if float >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if float < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let floored = float.floor();
    // `floored` is in [-2^63, 2^63), so the cast is exact.
    match int.cmp(&(floored as i64)) {
        Ordering::Equal if float > floored => Some(Ordering::Less),
        other => Some(other),
    }
}

/// JSON equality where `null == null` holds: the structural equality used inside objects and
/// arrays and for keys (G12). Numbers compare numerically, so `1` equals `1.0`.
pub fn json_equal(left: &Val<'_>, right: &Val<'_>) -> bool {
    match (left, right) {
        (Val::Absent | Val::Null, Val::Absent | Val::Null) => true,
        (Val::Bool(a), Val::Bool(b)) => a == b,
        (Val::Str(a), Val::Str(b)) => a == b,
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            compare_numbers(left, right) == Some(Ordering::Equal)
        }
        (Val::Arr(a), Val::Arr(b)) => {
            if a == b {
                return true;
            }
            match (decode::array_elements(a), decode::array_elements(b)) {
                (Ok(left_items), Ok(right_items)) => {
                    left_items.len() == right_items.len()
                        && left_items.iter().zip(&right_items).all(|(x, y)| raw_equal(x.get(), y.get()))
                }
                _ => false,
            }
        }
        (Val::Obj(a), Val::Obj(b)) => {
            if a == b {
                return true;
            }
            match (decode::object_entries(a), decode::object_entries(b)) {
                (Ok(left_entries), Ok(right_entries)) => {
                    left_entries.len() == right_entries.len()
                        && left_entries.iter().all(|(key, raw)| {
                            right_entries
                                .iter()
                                .find(|(other_key, _)| other_key == key)
                                .is_some_and(|(_, other_raw)| raw_equal(raw.get(), other_raw.get()))
                        })
                }
                _ => false,
            }
        }
        _ => false,
    }
}

fn raw_equal(left: &str, right: &str) -> bool {
    match (Val::from_json_text(left), Val::from_json_text(right)) {
        (Ok(a), Ok(b)) => json_equal(&a, &b),
        _ => false,
    }
}

/// `==` (G16): false when either side is absent or null; otherwise JSON equality.
pub fn eq(left: &Val<'_>, right: &Val<'_>) -> bool {
    !left.is_null() && !right.is_null() && json_equal(left, right)
}

/// `!=` (G15, G16): false when either side is absent or null; true between different types.
pub fn ne(left: &Val<'_>, right: &Val<'_>) -> bool {
    !left.is_null() && !right.is_null() && !json_equal(left, right)
}

/// Orders two numbers, or two strings by code point (UTF-8 byte order is code point order).
fn order(left: &Val<'_>, right: &Val<'_>) -> Option<Ordering> {
    match (left, right) {
        (Val::Str(a), Val::Str(b)) => Some(a.as_ref().cmp(b.as_ref())),
        _ => compare_numbers(left, right),
    }
}

pub fn lt(left: &Val<'_>, right: &Val<'_>) -> bool {
    order(left, right) == Some(Ordering::Less)
}

pub fn le(left: &Val<'_>, right: &Val<'_>) -> bool {
    matches!(order(left, right), Some(Ordering::Less | Ordering::Equal))
}

pub fn gt(left: &Val<'_>, right: &Val<'_>) -> bool {
    order(left, right) == Some(Ordering::Greater)
}

pub fn ge(left: &Val<'_>, right: &Val<'_>) -> bool {
    matches!(order(left, right), Some(Ordering::Greater | Ordering::Equal))
}

/// `field == "literal"` without building a `Val` for the literal.
pub fn eq_str(left: &Val<'_>, right: &str) -> bool {
    matches!(left, Val::Str(text) if text == right)
}

/// `field != "literal"`: true for any non-null value that is not that string.
pub fn ne_str(left: &Val<'_>, right: &str) -> bool {
    match left {
        Val::Absent | Val::Null => false,
        Val::Str(text) => text != right,
        _ => true,
    }
}

/// `x in array_value` (G17): true iff `x` is non-null and equals a non-null element.
pub fn in_array(left: &Val<'_>, array: &Val<'_>) -> bool {
    let Val::Arr(text) = array else {
        return false;
    };
    if left.is_null() {
        return false;
    }
    decode::any_array_element(text, |raw| match Val::from_json_text(raw.get()) {
        Ok(element) => eq(left, &element),
        Err(_) => false,
    })
}

/// `x in [a, b, ...]` with the list given by the condition (G17).
pub fn in_list(left: &Val<'_>, items: &[Val<'_>]) -> bool {
    !left.is_null() && items.iter().any(|item| eq(left, item))
}

/// `contains` (G18): substring of a string, or element (G16) of an array; else false.
pub fn contains(left: &Val<'_>, right: &Val<'_>) -> bool {
    match (left, right) {
        (Val::Str(text), Val::Str(needle)) => text.contains(needle.as_ref()),
        (Val::Arr(_), _) => in_array(right, left),
        _ => false,
    }
}

/// `startsWith` (G18): false unless both sides are strings.
pub fn starts_with(left: &Val<'_>, right: &Val<'_>) -> bool {
    matches!((left, right), (Val::Str(text), Val::Str(prefix)) if text.starts_with(prefix.as_ref()))
}

/// `endsWith` (G18): false unless both sides are strings.
pub fn ends_with(left: &Val<'_>, right: &Val<'_>) -> bool {
    matches!((left, right), (Val::Str(text), Val::Str(suffix)) if text.ends_with(suffix.as_ref()))
}

/// Regex search anywhere in a string (G19); a non-string gives false.
pub fn regex_match(left: &Val<'_>, regex: &regex::Regex) -> bool {
    matches!(left, Val::Str(text) if regex.is_match(text))
}

/// In a boolean position only `true` is true (G22).
pub fn truthy(value: &Val<'_>) -> bool {
    matches!(value, Val::Bool(true))
}

/// A float result, or null when it is not finite (G23).
fn float_result(number: f64) -> Val<'static> {
    if number.is_finite() {
        Val::Float(number)
    } else {
        Val::Null
    }
}

fn as_f64(value: &Val<'_>) -> Option<f64> {
    match value {
        Val::Int(number) => Some(*number as f64),
        Val::Float(number) => Some(*number),
        _ => None,
    }
}

/// Applies an int operation (null on overflow) or a float operation to two numbers.
fn arithmetic(
    left: &Val<'_>,
    right: &Val<'_>,
    int_operation: fn(i64, i64) -> Option<i64>,
    float_operation: fn(f64, f64) -> f64,
) -> Val<'static> {
    match (left, right) {
        (Val::Int(a), Val::Int(b)) => int_operation(*a, *b).map_or(Val::Null, Val::Int),
        _ => match (as_f64(left), as_f64(right)) {
            (Some(a), Some(b)) => float_result(float_operation(a, b)),
            _ => Val::Null,
        },
    }
}

/// `+` (G23): ints add to an int, numbers otherwise to a float, two strings concatenate.
pub fn add(left: &Val<'_>, right: &Val<'_>) -> Val<'static> {
    if let (Val::Str(a), Val::Str(b)) = (left, right) {
        let mut joined = String::with_capacity(a.len() + b.len());
        joined.push_str(a);
        joined.push_str(b);
        return Val::Str(joined.into());
    }
    arithmetic(left, right, i64::checked_add, |a, b| a + b)
}

pub fn sub(left: &Val<'_>, right: &Val<'_>) -> Val<'static> {
    arithmetic(left, right, i64::checked_sub, |a, b| a - b)
}

pub fn mul(left: &Val<'_>, right: &Val<'_>) -> Val<'static> {
    arithmetic(left, right, i64::checked_mul, |a, b| a * b)
}

/// `/` always gives a float (`6 / 2` is `3.0`); division by zero gives null (G23).
pub fn div(left: &Val<'_>, right: &Val<'_>) -> Val<'static> {
    match (as_f64(left), as_f64(right)) {
        (Some(a), Some(b)) if b != 0.0 => float_result(a / b),
        _ => Val::Null,
    }
}

/// `%` is the truncated remainder with the sign of the dividend; by zero gives null (G23).
pub fn rem(left: &Val<'_>, right: &Val<'_>) -> Val<'static> {
    match (left, right) {
        (Val::Int(_), Val::Int(0)) => Val::Null,
        // i64::MIN % -1 overflows in the machine operation, but its value 0 fits.
        (Val::Int(a), Val::Int(b)) => Val::Int(a.checked_rem(*b).unwrap_or(0)),
        _ => match (as_f64(left), as_f64(right)) {
            (Some(a), Some(b)) if b != 0.0 => float_result(a % b),
            _ => Val::Null,
        },
    }
}

/// Unary minus: ints (null on overflow) and floats; anything else is null.
pub fn neg(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Int(number) => number.checked_neg().map_or(Val::Null, Val::Int),
        Val::Float(number) => Val::Float(-number),
        _ => Val::Null,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn s(text: &str) -> Val<'_> {
        Val::Str(Cow::Borrowed(text))
    }

    fn arr(text: &str) -> Val<'_> {
        Val::Arr(Cow::Borrowed(text))
    }

    fn obj(text: &str) -> Val<'_> {
        Val::Obj(Cow::Borrowed(text))
    }

    #[test]
    fn g16_equality() {
        let cases: Vec<(Val, Val, bool)> = vec![
            (Val::Int(1), Val::Int(1), true),
            (Val::Int(1), Val::Float(1.0), true),
            (Val::Float(0.5), Val::Int(0), false),
            (Val::Int(i64::MAX), Val::Float(9_223_372_036_854_775_807.0), false),
            (s("1"), Val::Int(1), false),
            (Val::Bool(true), Val::Int(1), false),
            (Val::Bool(true), Val::Bool(true), true),
            (s("a"), s("a"), true),
            (obj(r#"{"a":1,"b":[1,2]}"#), obj(r#"{"b":[1.0,2],"a":1}"#), true),
            (obj(r#"{"a":1}"#), obj(r#"{"a":1,"b":null}"#), false),
            (arr("[null]"), arr("[ null ]"), true),
            (arr("[1,2]"), arr("[2,1]"), false),
            (arr("[]"), obj("{}"), false),
        ];
        for (left, right, expected) in cases {
            assert_eq!(eq(&left, &right), expected, "{left:?} == {right:?}");
            assert_eq!(ne(&left, &right), !expected, "{left:?} != {right:?}");
        }
    }

    #[test]
    fn g14_g15_null_sides_are_false() {
        for null in [Val::Null, Val::Absent] {
            for other in [Val::Null, Val::Absent, Val::Int(1), s("x")] {
                assert!(!eq(&null, &other) && !ne(&null, &other));
                assert!(!eq(&other, &null) && !ne(&other, &null));
                assert!(!lt(&null, &other) && !ge(&other, &null));
            }
            assert!(!eq_str(&null, "x") && !ne_str(&null, "x"));
        }
        assert!(eq_str(&s("x"), "x") && !eq_str(&s("y"), "x"));
        assert!(ne_str(&s("y"), "x") && ne_str(&Val::Int(1), "x") && !ne_str(&s("x"), "x"));
    }

    #[test]
    fn g16_ordering() {
        let cases: Vec<(Val, Val, [bool; 4])> = vec![
            // [lt, le, gt, ge]
            (Val::Int(1), Val::Int(2), [true, true, false, false]),
            (Val::Int(2), Val::Float(1.5), [false, false, true, true]),
            (Val::Float(2.0), Val::Int(2), [false, true, false, true]),
            (Val::Int(i64::MAX), Val::Float(9.3e18), [true, true, false, false]),
            (Val::Int(-3), Val::Float(-2.5), [true, true, false, false]),
            (s("10"), Val::Int(9), [false, false, false, false]),
            (s("a"), s("b"), [true, true, false, false]),
            (s("é"), s("z"), [false, false, true, true]),
            (Val::Bool(false), Val::Bool(true), [false, false, false, false]),
            (arr("[1]"), arr("[2]"), [false, false, false, false]),
        ];
        for (left, right, [expect_lt, expect_le, expect_gt, expect_ge]) in cases {
            assert_eq!(lt(&left, &right), expect_lt, "{left:?} < {right:?}");
            assert_eq!(le(&left, &right), expect_le, "{left:?} <= {right:?}");
            assert_eq!(gt(&left, &right), expect_gt, "{left:?} > {right:?}");
            assert_eq!(ge(&left, &right), expect_ge, "{left:?} >= {right:?}");
        }
    }

    #[test]
    fn g17_in() {
        let segments = arr(r#"["vip", 1, null, {"a": 1}]"#);
        assert!(in_array(&s("vip"), &segments));
        assert!(in_array(&Val::Float(1.0), &segments));
        assert!(in_array(&obj(r#"{"a": 1.0}"#), &segments));
        assert!(!in_array(&Val::Null, &segments));
        assert!(!in_array(&Val::Absent, &segments));
        assert!(!in_array(&s("1"), &segments));
        assert!(!in_array(&s("vip"), &s("vip")));
        let items = [s("a"), Val::Int(2), Val::Null];
        assert!(in_list(&s("a"), &items));
        assert!(in_list(&Val::Float(2.0), &items));
        assert!(!in_list(&Val::Null, &items));
        assert!(!in_list(&s("b"), &items));
    }

    #[test]
    fn g18_contains_starts_ends() {
        assert!(contains(&s("hello world"), &s("o w")));
        assert!(!contains(&s("hello"), &s("x")));
        assert!(contains(&arr(r#"["a", 2]"#), &Val::Int(2)));
        assert!(!contains(&arr(r#"["a", null]"#), &Val::Null));
        assert!(!contains(&s("123"), &Val::Int(2)));
        assert!(!contains(&Val::Absent, &s("a")));
        assert!(!contains(&obj(r#"{"a":1}"#), &s("a")));
        assert!(starts_with(&s("prefix-x"), &s("prefix")));
        assert!(!starts_with(&arr(r#"["prefix"]"#), &s("prefix")));
        assert!(ends_with(&s("a.json"), &s(".json")));
        assert!(!ends_with(&Val::Int(10), &s("0")));
    }

    #[test]
    fn g19_regex_search() {
        let regex = regex::Regex::new("b+c").expect("valid regex");
        let anchored = regex::Regex::new("^b+c$").expect("valid regex");
        assert!(regex_match(&s("abbcd"), &regex));
        assert!(!regex_match(&s("abbcd"), &anchored));
        assert!(regex_match(&s("bbc"), &anchored));
        assert!(!regex_match(&Val::Int(1), &regex));
        assert!(!regex_match(&Val::Absent, &regex));
    }

    #[test]
    fn g22_truthiness() {
        assert!(truthy(&Val::Bool(true)));
        for value in [Val::Bool(false), Val::Int(1), s("yes"), Val::Null, Val::Absent] {
            assert!(!truthy(&value));
        }
    }

    #[test]
    fn g23_arithmetic() {
        let cases: Vec<(Val<'static>, Val<'static>)> = vec![
            (add(&Val::Int(2), &Val::Int(3)), Val::Int(5)),
            (add(&Val::Int(2), &Val::Float(0.5)), Val::Float(2.5)),
            (add(&s("ab"), &s("cd")), Val::Str(Cow::Borrowed("abcd"))),
            (add(&s("ab"), &Val::Int(1)), Val::Null),
            (add(&Val::Int(i64::MAX), &Val::Int(1)), Val::Null),
            (add(&Val::Null, &Val::Int(1)), Val::Null),
            (add(&Val::Bool(true), &Val::Int(1)), Val::Null),
            (sub(&Val::Int(i64::MIN), &Val::Int(1)), Val::Null),
            (sub(&Val::Int(5), &Val::Int(7)), Val::Int(-2)),
            (mul(&Val::Int(4), &Val::Int(5)), Val::Int(20)),
            (mul(&Val::Float(1e308), &Val::Int(10)), Val::Null),
            (mul(&Val::Int(i64::MAX), &Val::Int(2)), Val::Null),
            (div(&Val::Int(6), &Val::Int(2)), Val::Float(3.0)),
            (div(&Val::Int(1), &Val::Int(0)), Val::Null),
            (div(&Val::Float(1.0), &Val::Float(0.0)), Val::Null),
            (div(&Val::Int(7), &Val::Int(2)), Val::Float(3.5)),
            (rem(&Val::Int(-7), &Val::Int(3)), Val::Int(-1)),
            (rem(&Val::Int(7), &Val::Int(-3)), Val::Int(1)),
            (rem(&Val::Int(7), &Val::Int(0)), Val::Null),
            (rem(&Val::Int(i64::MIN), &Val::Int(-1)), Val::Int(0)),
            (rem(&Val::Float(-7.5), &Val::Int(2)), Val::Float(-1.5)),
            (rem(&Val::Float(1.0), &Val::Float(0.0)), Val::Null),
            (neg(&Val::Int(3)), Val::Int(-3)),
            (neg(&Val::Int(i64::MIN)), Val::Null),
            (neg(&Val::Float(2.5)), Val::Float(-2.5)),
            (neg(&s("x")), Val::Null),
        ];
        for (index, (actual, expected)) in cases.into_iter().enumerate() {
            assert_eq!(actual, expected, "case {index}");
        }
    }
}
