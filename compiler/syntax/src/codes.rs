//! The one registry of diagnostic codes. Codes are numbered in ranges and never reused:
//! E00xx syntax, E01xx document structure, E02xx names, E03xx types, E04xx graph, E05xx time,
//! E06xx patterns, E09xx internal and build; W0xxx warnings. Each code has a page in
//! `docs/errors/<CODE>.md`, shown by `pulsec explain CODE`.

use crate::diagnostic::Severity;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub &'static str);

impl Code {
    pub fn as_str(self) -> &'static str {
        self.0
    }

    pub fn severity(self) -> Severity {
        if self.0.starts_with('W') {
            Severity::Warning
        } else {
            Severity::Error
        }
    }

    pub fn title(self) -> &'static str {
        ALL.iter().find(|(code, _)| *code == self).map(|(_, title)| *title).unwrap_or("unknown code")
    }

    pub fn lookup(text: &str) -> Option<Code> {
        ALL.iter().map(|(code, _)| *code).find(|code| code.0.eq_ignore_ascii_case(text))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

macro_rules! codes {
    ($($name:ident = $text:literal, $title:literal;)*) => {
        $(#[doc = $title] pub const $name: Code = Code($text);)*
        /// Every code with its one-line title, in numeric order.
        pub const ALL: &[(Code, &str)] = &[$(($name, $title)),*];
    };
}

codes! {
    // Syntax.
    E0001 = "E0001", "invalid JSON syntax";
    E0002 = "E0002", "invalid .pulse syntax";
    E0003 = "E0003", "duplicate key in a JSON object";
    E0004 = "E0004", "invalid expression syntax";
    E0005 = "E0005", "`=` used where `==` was meant";
    E0006 = "E0006", "SQL-style keyword used as an operator";
    E0007 = "E0007", "expression nested too deeply";
    // Document structure and configuration.
    E0101 = "E0101", "unknown key";
    E0102 = "E0102", "missing required key";
    E0103 = "E0103", "value has the wrong type";
    E0104 = "E0104", "unknown node type";
    E0105 = "E0105", "invalid identifier";
    E0106 = "E0106", "invalid condition object";
    E0107 = "E0107", "value is not one of the allowed choices";
    E0108 = "E0108", "invalid edge";
    E0109 = "E0109", "invalid number";
    E0110 = "E0110", "setting does not apply to this command";
    // Names.
    E0201 = "E0201", "duplicate node id";
    E0202 = "E0202", "unknown node";
    E0203 = "E0203", "unknown output port";
    E0204 = "E0204", "unknown input port";
    E0205 = "E0205", "unknown field";
    E0206 = "E0206", "unknown function";
    E0207 = "E0207", "duplicate or reserved name";
    E0208 = "E0208", "unknown counter in segment rule";
    E0209 = "E0209", "output port must be named";
    // Types.
    E0301 = "E0301", "incompatible types in comparison";
    E0302 = "E0302", "wrong arguments to a function";
    E0303 = "E0303", "condition is not boolean";
    E0304 = "E0304", "invalid schema type";
    E0305 = "E0305", "invalid template";
    E0306 = "E0306", "operator applied to incompatible types";
    E0307 = "E0307", "invalid JSON Schema document";
    // Graph.
    E0401 = "E0401", "cycle in the pipeline graph";
    E0402 = "E0402", "node has no input";
    E0403 = "E0403", "edge into a source";
    E0404 = "E0404", "duplicate edge";
    E0405 = "E0405", "edge out of a node without outputs";
    E0406 = "E0406", "keyed operator without `keyBy`";
    E0407 = "E0407", "pipeline has no source";
    // Time.
    E0501 = "E0501", "invalid duration";
    E0502 = "E0502", "duration must be positive";
    E0503 = "E0503", "counter window is not a multiple of the bucket";
    E0504 = "E0504", "`mode: latest` requires `keyBy`";
    // Patterns.
    E0601 = "E0601", "invalid regular expression";
    // Internal and build.
    E0901 = "E0901", "internal compiler error";
    E0902 = "E0902", "cannot read input file";
    E0903 = "E0903", "native build failed";
    E0904 = "E0904", "a node cannot be built";
    E0905 = "E0905", "schema file outside the pipeline's directory";
    E0906 = "E0906", "schema file is not a regular file";
    E0907 = "E0907", "schema file is too large";
    // Warnings.
    W0001 = "W0001", "no event schema: fields are typed from their use";
    W0002 = "W0002", "node output is not connected";
    W0003 = "W0003", "list push is at-least-once";
    W0004 = "W0004", "`ttl` is shorter than the operator's window";
    W0005 = "W0005", "capping with `max: 0` caps every event";
    W0006 = "W0006", "`allowedLateness` is longer than the window";
    W0007 = "W0007", "a template reads a field that may be null";
}
