//! Typed views of events for generated code: the `view!` macro declares a struct holding only
//! the fields a pipeline uses (borrowed from the input line where possible) and its
//! `Deserialize` impl, in which a repeated key's last value wins (G9). Nested objects that the
//! pipeline looks into get nested views, parsed from the borrowed raw object text.

use crate::val::Val;
use std::borrow::Cow;

/// The value of an absent field, for paths through a missing or non-object parent (G25).
pub static ABSENT: Val<'static> = Val::Absent;

/// A record as it flows between operators: the event's JSON text and its times (G33).
#[derive(Clone, Copy, Debug)]
pub struct Record<'r> {
    pub text: &'r str,
    pub event_time: i64,
    pub entry_time: i64,
}

/// Parses the nested view of an object slot; a non-object leaves the view absent.
pub fn nested<'de, T: serde::Deserialize<'de>>(value: &Val<'de>) -> Result<Option<T>, serde_json::Error> {
    match value {
        Val::Obj(Cow::Borrowed(text)) => serde_json::from_str(text).map(Some),
        _ => Ok(None),
    }
}

/// The JSON array of the given values, for array literals in `map` expressions.
pub fn array(items: &[Val<'_>]) -> Val<'static> {
    let mut text = String::from("[");
    for (idx, item) in items.iter().enumerate() {
        if idx > 0 {
            text.push(',');
        }
        crate::json::write_val(&mut text, item);
    }
    text.push(']');
    Val::Arr(Cow::Owned(text))
}

/// Declares a view struct and its borrowing `Deserialize` impl. A slot with a nested view keeps
/// the raw text of its object so the nested view borrows from the line; other slots decode
/// straight into a `Val`.
///
/// `view!(Name { "json_key" => field, "obj" => field [nested_field: NestedView] })`
#[macro_export]
macro_rules! view {
    (@slot $map:ident, $view:ident, $field:ident) => {
        $view.$field = $map.next_value()?;
    };
    (@slot $map:ident, $view:ident, $field:ident, $nested_field:ident, $nested:ident) => {
        $view.$field = $map.next_value::<$crate::val::RawVal<'de>>()?.0;
        $view.$nested_field = $crate::view::nested::<$nested<'de>>(&$view.$field)
            .map_err(<A::Error as $crate::serde::de::Error>::custom)?;
    };
    ($name:ident { $($key:literal => $field:ident $([$nested_field:ident : $nested:ident])?),* $(,)? }) => {
        #[derive(Default, Debug)]
        struct $name<'a> {
            $($field: $crate::Val<'a>, $($nested_field: Option<$nested<'a>>,)?)*
            _marker: std::marker::PhantomData<&'a str>,
        }

        impl<'de> $crate::serde::Deserialize<'de> for $name<'de> {
            fn deserialize<D: $crate::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ViewVisitor;
                impl<'de> $crate::serde::de::Visitor<'de> for ViewVisitor {
                    type Value = $name<'de>;
                    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                        formatter.write_str("a JSON object")
                    }
                    #[allow(unused_mut)]
                    fn visit_map<A: $crate::serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name<'de>, A::Error> {
                        let mut view = $name::default();
                        while let Some(key) = map.next_key::<$crate::decode::Key<'de>>()? {
                            match key.as_str() {
                                $($key => {
                                    $crate::view!(@slot map, view, $field $(, $nested_field, $nested)?);
                                })*
                                _ => {
                                    map.next_value::<$crate::decode::Skip>()?;
                                }
                            }
                        }
                        Ok(view)
                    }
                }
                deserializer.deserialize_map(ViewVisitor)
            }
        }
    };
}
