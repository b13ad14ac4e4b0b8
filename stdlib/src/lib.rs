//! Building blocks that generated pipelines call: the event value type, decoding helpers,
//! schema checks, event-time parsing, the value semantics of conditions and expressions
//! (clarifications G16–G25), and map reshaping. Nothing here knows about I/O or tokio.
//!
//! CONTRACT (used by generated code; signatures must not change without updating codegen):
//!
//! ```text
//! val::Val<'a>            Absent | Null | Bool(bool) | Int(i64) | Float(f64)
//!                         | Str(Cow<'a, str>) | Obj(Cow<'a, str>) | Arr(Cow<'a, str>)
//!                         (Obj/Arr hold the raw JSON text of the object/array)
//!   impl Default (Absent), Clone, Debug, PartialEq (structural, for tests)
//!   impl<'de> Deserialize<'de> for Val<'de>   via &'de RawValue, strings borrowed when unescaped
//!   Val::is_null(&self) -> bool                  Absent or Null
//!   Val::into_owned(self) -> Val<'static>
//!   Val::type_name(&self) -> &'static str        "absent", "null", "bool", "int", "float", "string", "object", "array"
//! decode::Key<'de>        Deserialize; as_str(&self) -> &str   (borrowed map keys)
//! decode::Skip            Deserialize; skips a value but still rejects numbers outside f64
//! decode::parse_event::<T>(line: &str) -> Result<T, DeadLetter>
//!                         DeadLetter { reason: String, event: DeadEvent<'a> }
//!                         DeadEvent<'a> { Raw(&'a str), Json(Cow<'a, str>) }  (runtime re-exports it)
//!                         invalid JSON (also 1e999, NaN) -> reason "invalid-json: ...", event Raw(line)
//!                         valid JSON that is not an object -> "not-an-object: ...", event Json(compact text)
//! decode::nested::<T>(val: &Val<'de>) -> Result<Option<T>, DeadLetter>  parse a nested object slot
//!                         Absent/Null -> Ok(None); non-object -> Err("schema: expected object, found ...")
//! schema::FieldType       String | Int | Float | Bool | Timestamp | Object | Array | Any
//! schema::check(val: &Val, ty: FieldType, nullable: bool) -> Result<(), SchemaError>
//!                         Err("expected int, found float") etc.; Absent/Null fail unless nullable
//!                         ("missing required field", "null in non-nullable field"); no category
//!                         prefix: the caller writes "schema: field `x`: <message>"
//! time::event_time(val: &Val) -> Result<i64, EventTimeError>   (G32); Err has no category prefix:
//!                         the caller writes "event-time: <message>"
//! time::parse_rfc3339(text: &str) -> Option<i64>
//! ops::{eq, ne, lt, le, gt, ge}(a: &Val, b: &Val) -> bool           (G14–G16; eq/ne with a null
//!                         side are false: codegen turns `x == null` into is_null)
//! ops::eq_str(a: &Val, b: &str) -> bool, ops::ne_str(a: &Val, b: &str) -> bool   fast paths
//! ops::in_array(a: &Val, array: &Val) -> bool, ops::in_list(a: &Val, items: &[Val]) -> bool (G17)
//! ops::contains(a, b) / starts_with(a, b) / ends_with(a, b) -> bool   (G18)
//! ops::regex_match(a: &Val, re: &Regex) -> bool                      (G19)
//! ops::truthy(a: &Val) -> bool                                        only Bool(true)
//! ops::{add, sub, mul, div, rem}(a: &Val, b: &Val) -> Val<'static>, ops::neg(a: &Val) -> Val<'static>   (G23)
//! func::{lower, upper, len, abs, floor, ceil, round, to_string, to_int, to_float}(a: &Val) -> Val<'static>
//! func::{min, max, concat}(args: &[Val]) -> Val<'static>              (G24)
//! func::{contains, starts_with, ends_with}(a: &Val, b: &Val) -> Val<'static>   never null
//! text::text_form(v: &Val) -> Cow<str>                                (G24 text form)
//! json::write_val(out: &mut String, v: &Val)                          JSON text of a value
//! json::write_str(out: &mut String, s: &str)                          JSON string literal
//! reshape::reshape(event: &str, keep: &[&[&str]], remove: &[&[&str]], set: &[(&[&str], Val)]) -> Result<String, ReshapeError>
//!                         G38: keep (projection), then remove, then set (given in key order)
//! view::{view!, Record, ABSENT, nested, array}  typed event views (view.rs)
//! pub use regex::{Error as RegexError, Regex}; pub use serde (for generated Deserialize impls)
//! ```
//!
//! Additional public helpers (not needed by codegen, but available): `Val::{field, path,
//! as_borrowed, from_json_text}`, `val::parse_number`, `decode::{validate_json, object_entries,
//! for_each_object_entry, any_array_element, array_elements}`, `ops::{json_equal,
//! compare_numbers}`, `func::coalesce`, `text::{write_canonical, write_float, key_form}` (G12 key
//! identity: `1` and `1.0` give the same text, `"1"` another; `None` for null keys).
//! `progress`: the checkpoint progress record, the savepoint frame and the state compatibility
//! report (`compare_state`), shared by the runtime's restores and `pulsec diff`.

pub mod decode;
pub mod duration;
pub mod func;
pub mod json;
pub mod operators;
pub mod ops;
pub mod progress;
pub mod reshape;
pub mod schema;
pub mod state;
pub mod text;
pub mod time;
pub mod val;
pub mod view;

pub use regex::{Error as RegexError, Regex};
pub use serde;
pub use val::Val;
