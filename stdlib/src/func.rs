//! Expression functions (G24). Null, absent or wrongly typed arguments give null unless the
//! rule says otherwise; results are owned so they can outlive the event.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::decode;
use crate::ops;
use crate::text::text_form;
use crate::val::Val;

/// Converts a float to an int when it fits i64 (after the caller has rounded it).
fn float_to_int(number: f64) -> Val<'static> {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&number) {
        Val::Int(number as i64)
    } else {
        Val::Null
    }
}

pub fn lower(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Str(text) => Val::Str(Cow::Owned(text.to_lowercase())),
        _ => Val::Null,
    }
}

pub fn upper(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Str(text) => Val::Str(Cow::Owned(text.to_uppercase())),
        _ => Val::Null,
    }
}

/// String length in code points, or the number of array elements or object members.
pub fn len(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Str(text) => Val::Int(text.chars().count() as i64),
        Val::Arr(text) => {
            let mut count = 0i64;
            decode::any_array_element(text, |_| {
                count += 1;
                false
            });
            Val::Int(count)
        }
        // Distinct members: a repeated key is one member (last duplicate wins, G9).
        Val::Obj(text) => decode::object_entries(text).map_or(Val::Null, |entries| Val::Int(entries.len() as i64)),
        _ => Val::Null,
    }
}

/// Absolute value of the same type; `abs(i64::MIN)` does not fit and gives null.
pub fn abs(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Int(number) => number.checked_abs().map_or(Val::Null, Val::Int),
        Val::Float(number) => Val::Float(number.abs()),
        _ => Val::Null,
    }
}

pub fn floor(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Int(number) => Val::Int(*number),
        Val::Float(number) => float_to_int(number.floor()),
        _ => Val::Null,
    }
}

pub fn ceil(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Int(number) => Val::Int(*number),
        Val::Float(number) => float_to_int(number.ceil()),
        _ => Val::Null,
    }
}

/// Rounds halves away from zero (`f64::round` does exactly that) and gives an int.
pub fn round(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Int(number) => Val::Int(*number),
        Val::Float(number) => float_to_int(number.round()),
        _ => Val::Null,
    }
}

/// The text form (G24) as a string; null and absent give null.
pub fn to_string(value: &Val<'_>) -> Val<'static> {
    if value.is_null() {
        return Val::Null;
    }
    Val::Str(Cow::Owned(text_form(value).into_owned()))
}

/// Ints as they are, floats truncated toward zero, integer strings parsed.
pub fn to_int(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Int(number) => Val::Int(*number),
        Val::Float(number) => float_to_int(number.trunc()),
        Val::Str(text) => text.parse::<i64>().map_or(Val::Null, Val::Int),
        _ => Val::Null,
    }
}

/// Numbers as floats, numeric strings parsed; non-finite results (`"inf"`, `"NaN"`) give null.
pub fn to_float(value: &Val<'_>) -> Val<'static> {
    match value {
        Val::Int(number) => Val::Float(*number as f64),
        Val::Float(number) => Val::Float(*number),
        Val::Str(text) => match text.parse::<f64>() {
            Ok(number) if number.is_finite() => Val::Float(number),
            _ => Val::Null,
        },
        _ => Val::Null,
    }
}

/// Picks the numeric argument that `wanted` prefers; the first one wins ties. Non-numeric
/// arguments are skipped; null if there is no number.
fn pick_number(arguments: &[Val<'_>], wanted: Ordering) -> Val<'static> {
    let mut best: Option<&Val<'_>> = None;
    for argument in arguments {
        if !matches!(argument, Val::Int(_) | Val::Float(_)) {
            continue;
        }
        best = match best {
            Some(current) if ops::compare_numbers(argument, current) != Some(wanted) => Some(current),
            _ => Some(argument),
        };
    }
    best.map_or(Val::Null, |value| value.as_borrowed().into_owned())
}

pub fn min(arguments: &[Val<'_>]) -> Val<'static> {
    pick_number(arguments, Ordering::Less)
}

pub fn max(arguments: &[Val<'_>]) -> Val<'static> {
    pick_number(arguments, Ordering::Greater)
}

/// Joins the text forms of the non-null arguments.
pub fn concat(arguments: &[Val<'_>]) -> Val<'static> {
    let mut joined = String::new();
    for argument in arguments.iter().filter(|argument| !argument.is_null()) {
        joined.push_str(&text_form(argument));
    }
    Val::Str(Cow::Owned(joined))
}

/// The first argument that is neither null nor absent, else null.
pub fn coalesce(arguments: &[Val<'_>]) -> Val<'static> {
    arguments
        .iter()
        .find(|argument| !argument.is_null())
        .map_or(Val::Null, |argument| argument.as_borrowed().into_owned())
}

/// `contains(a, b)` as G18; never null.
pub fn contains(left: &Val<'_>, right: &Val<'_>) -> Val<'static> {
    Val::Bool(ops::contains(left, right))
}

pub fn starts_with(left: &Val<'_>, right: &Val<'_>) -> Val<'static> {
    Val::Bool(ops::starts_with(left, right))
}

pub fn ends_with(left: &Val<'_>, right: &Val<'_>) -> Val<'static> {
    Val::Bool(ops::ends_with(left, right))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Val<'_> {
        Val::Str(Cow::Borrowed(text))
    }

    #[test]
    fn g24_unary_functions() {
        let cases: Vec<(Val<'static>, Val<'static>)> = vec![
            (lower(&s("ÀBC")), s("àbc")),
            (upper(&s("straße")), s("STRASSE")),
            (lower(&Val::Int(1)), Val::Null),
            (len(&s("héllo")), Val::Int(5)),
            (len(&Val::Arr(Cow::Borrowed("[1, [2, 3], {}]"))), Val::Int(3)),
            (len(&Val::Obj(Cow::Borrowed(r#"{"a": 1, "b": 2, "a": 3}"#))), Val::Int(2)),
            (len(&Val::Int(12)), Val::Null),
            (len(&Val::Absent), Val::Null),
            (abs(&Val::Int(-3)), Val::Int(3)),
            (abs(&Val::Float(-2.5)), Val::Float(2.5)),
            (abs(&Val::Int(i64::MIN)), Val::Null),
            (floor(&Val::Float(-2.5)), Val::Int(-3)),
            (ceil(&Val::Float(-2.5)), Val::Int(-2)),
            (floor(&Val::Int(4)), Val::Int(4)),
            (floor(&Val::Float(1e300)), Val::Null),
            (round(&Val::Float(2.5)), Val::Int(3)),
            (round(&Val::Float(-2.5)), Val::Int(-3)),
            (round(&Val::Float(2.4)), Val::Int(2)),
            (round(&s("2")), Val::Null),
            (to_string(&Val::Float(3.0)), s("3.0")),
            (to_string(&Val::Obj(Cow::Borrowed(r#"{"b":1,"a":"é"}"#))), s(r#"{"a":"é","b":1}"#)),
            (to_string(&s("x")), s("x")),
            (to_string(&Val::Null), Val::Null),
            (to_int(&Val::Float(-2.9)), Val::Int(-2)),
            (to_int(&s("42")), Val::Int(42)),
            (to_int(&s("-7")), Val::Int(-7)),
            (to_int(&s("4.5")), Val::Null),
            (to_int(&s("x")), Val::Null),
            (to_int(&Val::Bool(true)), Val::Null),
            (to_float(&Val::Int(2)), Val::Float(2.0)),
            (to_float(&s("2.5")), Val::Float(2.5)),
            (to_float(&s("1e3")), Val::Float(1000.0)),
            (to_float(&s("inf")), Val::Null),
            (to_float(&s("abc")), Val::Null),
        ];
        for (index, (actual, expected)) in cases.into_iter().enumerate() {
            assert_eq!(actual, expected, "case {index}");
        }
    }

    #[test]
    fn g24_variadic_functions() {
        assert_eq!(min(&[Val::Int(3), Val::Float(2.5), s("1")]), Val::Float(2.5));
        assert_eq!(max(&[Val::Int(3), Val::Float(2.5), Val::Null]), Val::Int(3));
        assert_eq!(max(&[Val::Int(3), Val::Float(3.0)]), Val::Int(3));
        assert_eq!(min(&[s("a"), Val::Null]), Val::Null);
        assert_eq!(min(&[]), Val::Null);
        assert_eq!(
            concat(&[s("a"), Val::Int(1), Val::Null, Val::Float(2.0), Val::Absent, Val::Bool(false)]),
            s("a12.0false")
        );
        assert_eq!(concat(&[Val::Null]), s(""));
        assert_eq!(coalesce(&[Val::Absent, Val::Null, Val::Int(0), Val::Int(1)]), Val::Int(0));
        assert_eq!(coalesce(&[Val::Absent]), Val::Null);
    }

    #[test]
    fn g24_string_predicates_are_never_null() {
        assert_eq!(contains(&Val::Null, &s("a")), Val::Bool(false));
        assert_eq!(contains(&s("abc"), &s("b")), Val::Bool(true));
        assert_eq!(starts_with(&s("abc"), &s("a")), Val::Bool(true));
        assert_eq!(ends_with(&Val::Int(1), &s("1")), Val::Bool(false));
    }
}
