//! The common AST. The JSON front end and the `.pulse` front end both produce a `Document`;
//! the checker lowers it to the IR. Spans point into whichever file the node came from.
//!
//! A `Document` is deliberately close to the JSON DAG: node configuration is a spanned value
//! tree, and the checker decides what each key means. The `.pulse` front end adds two kinds of
//! value that JSON spells as strings: parsed expressions and duration literals.

use crate::span::{FileId, Span, Spanned};

#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub file: FileId,
    pub span: Span,
    /// Top-level entries in source order: `name`, `description`, `version`, `schema`, `runtime`
    /// and any unknown keys (which the checker reports). `nodes` and `edges` are split out below.
    pub settings: Vec<Member>,
    pub nodes: Vec<NodeDecl>,
    pub edges: Vec<EdgeDecl>,
    /// Span of the `nodes` / `edges` sections, for "missing" diagnostics; `None` when absent.
    pub nodes_span: Option<Span>,
    pub edges_span: Option<Span>,
    /// Test blocks: `test` items of `.pulse`, the `tests` array of the JSON DAG.
    pub tests: Vec<TestDecl>,
    /// Top-level `.pulse` items that did not parse (their syntax errors are reported). The rest
    /// of the document is still checked; these say what is missing, so that references to it
    /// do not cascade into more errors. Always empty for JSON.
    pub unparsed: Vec<Unparsed>,
}

impl Document {
    pub fn setting(&self, key: &str) -> Option<&Value> {
        self.settings.iter().rev().find(|member| member.key.node == key).map(|member| &member.value)
    }

    /// True when some items did not parse: the document is only what parsed, and no IR is
    /// ever built from it.
    pub fn is_partial(&self) -> bool {
        !self.unparsed.is_empty()
    }

    /// True when an item that did not parse would have set `key` (`name`, `schema`, ...).
    pub fn unparsed_setting(&self, key: &str) -> bool {
        self.unparsed.iter().any(|item| item.setting.as_deref() == Some(key))
    }

    /// A node declared in an item that did not parse, if `id` is one.
    pub fn unparsed_node(&self, id: &str) -> Option<&UnparsedNode> {
        self.unparsed_nodes().find(|node| node.id.node == id)
    }

    /// The nodes declared in items that did not parse.
    pub fn unparsed_nodes(&self) -> impl Iterator<Item = &UnparsedNode> + Clone {
        self.unparsed.iter().flat_map(|item| &item.nodes)
    }

    /// True when an item that did not parse mentions `name` (it may hold an edge to or from it).
    pub fn unparsed_mentions(&self, name: &str) -> bool {
        self.unparsed.iter().any(|item| item.names.iter().any(|mentioned| mentioned == name))
    }
}

/// A top-level item that did not parse, as far as its text can be read without a grammar.
#[derive(Clone, Debug, PartialEq)]
pub struct Unparsed {
    pub span: Span,
    /// The setting a keyword item would have set: `name` for `pipeline`, `schema` for `event`
    /// and `schema`, `description`, `version`, `runtime`; `None` for nodes, flows and tests.
    pub setting: Option<String>,
    /// The nodes it declares (`id:` at its start or after `->`).
    pub nodes: Vec<UnparsedNode>,
    /// Every name it mentions outside strings and comments.
    pub names: Vec<String>,
}

/// A node declared in an item that did not parse: its id, and its type as written when a name
/// follows the `:` (`logins: filter {` gives `filter`), which the checker trusts only to know a
/// source (whose output is the event schema whatever its configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct UnparsedNode {
    pub id: Spanned<String>,
    pub kind: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeDecl {
    pub span: Span,
    pub id: Spanned<String>,
    /// The node type as written, e.g. `filter`, `kafka-source`.
    pub kind: Spanned<String>,
    /// Always an object value (possibly empty); its span is the config's span, or the node's when absent.
    pub config: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EdgeDecl {
    pub span: Span,
    pub from: Spanned<String>,
    pub from_port: Option<Spanned<String>>,
    pub to: Spanned<String>,
    pub to_port: Option<Spanned<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestDecl {
    pub span: Span,
    pub name: Spanned<String>,
    /// The test body as a value tree: `{"inputs": [...], "expect": {...}}`. The `.pulse` test
    /// forms (`at 5m { ... }`, `clock 5m`, ...) are objects with `$` keys, as in JSON
    /// (`pulse_check::test_blocks` reads them).
    pub body: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub key: Spanned<String>,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    Null,
    Bool(bool),
    /// A JSON number, kept as written; the checker decides whether it must be an integer.
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Vec<Member>),
    /// A `.pulse` duration literal such as `5m`, already converted to milliseconds.
    Duration(DurationLit),
    /// A `.pulse` expression that is not a plain literal.
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct DurationLit {
    pub millis: u64,
    /// As written, e.g. `5m`.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Value {
    pub fn new(kind: ValueKind, span: Span) -> Value {
        Value { kind, span }
    }

    pub fn as_object(&self) -> Option<&[Member]> {
        match &self.kind {
            ValueKind::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::String(text) => Some(text),
            _ => None,
        }
    }

    /// A short description of the value's kind for "expected X, found Y" notes.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            ValueKind::Null => "null",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::Number(Number::Int(_)) => "an integer",
            ValueKind::Number(Number::Float(_)) => "a number",
            ValueKind::String(_) => "a string",
            ValueKind::Array(_) => "an array",
            ValueKind::Object(_) => "an object",
            ValueKind::Duration(_) => "a duration",
            ValueKind::Expr(_) => "an expression",
        }
    }
}

/// An expression (G22 of the clarifications): conditions, map `set` values and segment rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Expr>),
    /// `a.b.c`: one segment per name.
    Path(Vec<Spanned<String>>),
    Call {
        name: Spanned<String>,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `lhs =~ "regex"`.
    Match {
        lhs: Box<Expr>,
        pattern: Spanned<String>,
    },
    /// Placeholder after a syntax error; unifies with every type so one mistake does not cascade.
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}
