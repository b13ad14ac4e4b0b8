//! The surface tree of a `.pulse` file: what the user wrote, sugar included, with spans. The
//! parser builds it from pest's tree; `lower` turns it into the common `ast::Document`; the
//! printer lays it out for `pulsec fmt` and `pulsec convert`.

use crate::ast::{DurationLit, Expr, Unparsed};
use crate::span::{Span, Spanned};

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct File {
    pub items: Vec<Item>,
    /// Items that did not parse (their errors are reported); empty for a tree built from a document.
    pub unparsed: Vec<Unparsed>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Item {
    pub span: Span,
    /// A blank line separates this item from the previous one (kept by the formatter).
    pub blank_before: bool,
    pub kind: ItemKind,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ItemKind {
    /// `pipeline welcome-message-d0` (the name may also be a string).
    Pipeline { keyword: Span, name: Spanned<String> },
    /// `description "..."`
    Description { keyword: Span, value: Value },
    /// `version "1.0"`
    Version { keyword: Span, value: Value },
    /// `runtime { checkpointInterval: 2m ... }`
    Runtime { keyword: Span, value: Value },
    /// `schema "events.schema.json"` or `schema { fields: {...} }`
    Schema { keyword: Span, value: Value },
    /// `event [Name] { field: type ... }`
    Event { keyword: Span, name: Option<Spanned<String>>, fields: Fields },
    /// `test "name" { inputs: [...], expect: {...} }`
    Test { keyword: Span, name: Spanned<String>, body: Value },
    /// A chain of nodes (possibly a lone declaration).
    Chain(Chain),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fields {
    pub span: Span,
    pub fields: Vec<Field>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Field {
    pub span: Span,
    pub key: Spanned<String>,
    pub ty: FieldType,
    pub nullable: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldType {
    /// `string`, `int`, ...
    Name(Spanned<String>),
    /// A type written as a string, e.g. `"string?"`.
    Str(Spanned<String>),
    /// A nested object `{ ... }`.
    Nested(Fields),
}

/// `a -> b: filter(...) -> c.in`, optionally ending in a branch block after a plain reference.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Chain {
    pub span: Span,
    pub elems: Vec<Elem>,
    pub branches: Option<Branches>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Elem {
    Ref { span: Span, id: Spanned<String>, port: Option<Spanned<String>> },
    Decl(Box<NodeDecl>),
}

impl Elem {
    pub fn span(&self) -> Span {
        match self {
            Elem::Ref { span, .. } => *span,
            Elem::Decl(decl) => decl.span,
        }
    }

    pub fn id(&self) -> &Spanned<String> {
        match self {
            Elem::Ref { id, .. } => id,
            Elem::Decl(decl) => &decl.id,
        }
    }

    pub fn port(&self) -> Option<&Spanned<String>> {
        match self {
            Elem::Ref { port, .. } => port.as_ref(),
            Elem::Decl(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Branches {
    pub span: Span,
    pub branches: Vec<Branch>,
}

/// `yes -> a -> b` inside a branch block: the port, then the rest of a chain.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Branch {
    pub span: Span,
    pub port: Spanned<String>,
    pub chain: Chain,
}

/// `ID: TYPE [(ARGS)] [by KEY] [where COND] [{ CONFIG }]`
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NodeDecl {
    pub span: Span,
    pub id: Spanned<String>,
    pub kind: Spanned<String>,
    pub args: Option<Args>,
    pub by: Option<(Span, Value)>,
    pub where_clause: Option<(Span, Value)>,
    pub block: Option<Block>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Args {
    pub span: Span,
    pub values: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Block {
    pub span: Span,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub span: Span,
    pub kind: EntryKind,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum EntryKind {
    Pair(Pair),
    /// `route NAME: COND` (splitter)
    Route {
        keyword: Span,
        name: Spanned<String>,
        cond: Value,
    },
    /// `counter NAME over WINDOW [where COND]` (segmentation)
    Counter {
        keyword: Span,
        name: Spanned<String>,
        window: Value,
        cond: Option<Value>,
    },
    /// `segment NAME: RULE` (segmentation)
    Segment {
        keyword: Span,
        name: Spanned<String>,
        rule: Value,
    },
    /// `aggregate NAME: FN([FIELD])` (window-aggregate)
    Aggregate {
        keyword: Span,
        name: Spanned<String>,
        func: Spanned<String>,
        field: Option<Value>,
    },
    /// `window tumbling D` / `window sliding SIZE every SLIDE` / `window session gap G`
    Window {
        keyword: Span,
        window: WindowSugar,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WindowSugar {
    Tumbling { keyword: Span, size: Value },
    Sliding { keyword: Span, size: Value, slide: Value },
    Session { keyword: Span, gap: Value },
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pair {
    pub key: Spanned<String>,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Value {
    pub span: Span,
    pub kind: ValueKind,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ValueKind {
    Duration(DurationLit),
    List(Vec<Value>),
    Object(Vec<Pair>),
    /// Every other value, literals included (strings, numbers, bools, null are expressions).
    Expr(Expr),
}
