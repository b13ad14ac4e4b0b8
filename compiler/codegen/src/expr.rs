//! Expressions -> Rust. Conditions compile to `bool` expressions, values to `Val` expressions;
//! string comparisons and literal `in` lists get fast paths, regexes are compiled once.

use crate::segments::{access, map_fast_path, ViewTree};
use proc_macro2::TokenStream;
use pulse_ir::{BinaryOp, Expr, ExprKind, Function, Path};
use quote::{format_ident, quote};

pub struct Emitter<'a> {
    pub tree: &'a ViewTree,
    pub regexes: &'a mut Vec<String>,
    /// Inside segment rules: counter names, read from the local `values` array.
    pub counters: &'a [String],
    /// How many `coalesce` blocks enclose the one being emitted; each gets a label of its own.
    pub n_open_coalesce: usize,
}

pub fn condition(expr: &Expr, tree: &ViewTree, regexes: &mut Vec<String>) -> TokenStream {
    Emitter { tree, regexes, counters: &[], n_open_coalesce: 0 }.condition(expr)
}

/// A segment rule over the counter values in the local `values` (G42).
pub fn rule(expr: &Expr, counters: &[String], regexes: &mut Vec<String>) -> TokenStream {
    let tree = ViewTree::default();
    Emitter { tree: &tree, regexes, counters, n_open_coalesce: 0 }.condition(expr)
}

impl Emitter<'_> {
    fn regex_field(&mut self, pattern: &str) -> proc_macro2::Ident {
        let idx = match self.regexes.iter().position(|existing| existing == pattern) {
            Some(idx) => idx,
            None => {
                self.regexes.push(pattern.to_string());
                self.regexes.len() - 1
            }
        };
        format_ident!("re_{}", idx)
    }

    pub fn condition(&mut self, expr: &Expr) -> TokenStream {
        match &expr.kind {
            ExprKind::Bool(flag) => quote! { #flag },
            ExprKind::Binary(BinaryOp::And, lhs, rhs) => {
                let (lhs, rhs) = (self.condition(lhs), self.condition(rhs));
                quote! { (#lhs && #rhs) }
            }
            ExprKind::Binary(BinaryOp::Or, lhs, rhs) => {
                let (lhs, rhs) = (self.condition(lhs), self.condition(rhs));
                quote! { (#lhs || #rhs) }
            }
            ExprKind::Not(inner) => {
                let inner = self.condition(inner);
                quote! { !(#inner) }
            }
            ExprKind::IsNull(inner) => {
                let inner = self.value_ref(inner);
                quote! { (#inner).is_null() }
            }
            ExprKind::IsNotNull(inner) => {
                let inner = self.value_ref(inner);
                quote! { !(#inner).is_null() }
            }
            ExprKind::Binary(op @ (BinaryOp::Eq | BinaryOp::Ne), lhs, rhs) => {
                let literal = match (&lhs.kind, &rhs.kind) {
                    (_, ExprKind::Str(text)) => Some((lhs, text)),
                    (ExprKind::Str(text), _) => Some((rhs, text)),
                    _ => None,
                };
                match literal {
                    Some((subject, text)) => {
                        let subject = self.value_ref(subject);
                        if *op == BinaryOp::Eq {
                            quote! { ops::eq_str(#subject, #text) }
                        } else {
                            quote! { ops::ne_str(#subject, #text) }
                        }
                    }
                    None => {
                        let (lhs, rhs) = (self.value_ref(lhs), self.value_ref(rhs));
                        if *op == BinaryOp::Eq {
                            quote! { ops::eq(#lhs, #rhs) }
                        } else {
                            quote! { ops::ne(#lhs, #rhs) }
                        }
                    }
                }
            }
            ExprKind::Binary(op @ (BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge), lhs, rhs) => {
                let (lhs, rhs) = (self.value_ref(lhs), self.value_ref(rhs));
                let function = match op {
                    BinaryOp::Lt => quote! { ops::lt },
                    BinaryOp::Le => quote! { ops::le },
                    BinaryOp::Gt => quote! { ops::gt },
                    _ => quote! { ops::ge },
                };
                quote! { #function(#lhs, #rhs) }
            }
            ExprKind::Binary(BinaryOp::In, lhs, rhs) => {
                let subject = self.value_ref(lhs);
                match &rhs.kind {
                    ExprKind::Array(items) => {
                        let items: Vec<TokenStream> = items.iter().map(|item| self.value(item)).collect();
                        quote! { ops::in_list(#subject, &[#(#items),*]) }
                    }
                    _ => {
                        let array = self.value_ref(rhs);
                        quote! { ops::in_array(#subject, #array) }
                    }
                }
            }
            ExprKind::Match(subject, pattern) => {
                let subject = self.value_ref(subject);
                let field = self.regex_field(pattern);
                quote! { ops::regex_match(#subject, &self.#field) }
            }
            ExprKind::Call(function @ (Function::Contains | Function::StartsWith | Function::EndsWith), args)
                if args.len() == 2 =>
            {
                let (lhs, rhs) = (self.value_ref(&args[0]), self.value_ref(&args[1]));
                let name = match function {
                    Function::Contains => quote! { ops::contains },
                    Function::StartsWith => quote! { ops::starts_with },
                    _ => quote! { ops::ends_with },
                };
                quote! { #name(#lhs, #rhs) }
            }
            _ => {
                let value = self.value_ref(expr);
                quote! { ops::truthy(#value) }
            }
        }
    }

    /// An expression of type `&Val`.
    pub fn value_ref(&mut self, expr: &Expr) -> TokenStream {
        match &expr.kind {
            ExprKind::Field(path) => access(quote! { view }, self.tree, &path.0),
            _ => {
                let value = self.value(expr);
                quote! { &#value }
            }
        }
    }

    /// An expression of type `Val`.
    pub fn value(&mut self, expr: &Expr) -> TokenStream {
        match &expr.kind {
            ExprKind::Null => quote! { Val::Null },
            ExprKind::Bool(flag) => quote! { Val::Bool(#flag) },
            ExprKind::Int(number) => quote! { Val::Int(#number) },
            ExprKind::Float(number) => quote! { Val::Float(#number) },
            ExprKind::Str(text) => quote! { Val::Str(Cow::Borrowed(#text)) },
            ExprKind::Field(path) => {
                let access = access(quote! { view }, self.tree, &path.0);
                quote! { (#access).clone() }
            }
            ExprKind::Array(items) => {
                let items: Vec<TokenStream> = items.iter().map(|item| self.value(item)).collect();
                quote! { pulse_runtime::generated::view::array(&[#(#items),*]) }
            }
            ExprKind::Counter(name) => match self.counters.iter().position(|counter| counter == name) {
                Some(idx) => quote! { Val::Int(values[#idx]) },
                None => quote! { Val::Null },
            },
            ExprKind::Neg(inner) => {
                let inner = self.value_ref(inner);
                quote! { ops::neg(#inner) }
            }
            ExprKind::Binary(
                op @ (BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem),
                lhs,
                rhs,
            ) => {
                let (lhs, rhs) = (self.value_ref(lhs), self.value_ref(rhs));
                let function = match op {
                    BinaryOp::Add => quote! { ops::add },
                    BinaryOp::Sub => quote! { ops::sub },
                    BinaryOp::Mul => quote! { ops::mul },
                    BinaryOp::Div => quote! { ops::div },
                    _ => quote! { ops::rem },
                };
                quote! { #function(#lhs, #rhs) }
            }
            ExprKind::Call(function, args) => self.call(*function, args),
            ExprKind::Binary(..)
            | ExprKind::Not(_)
            | ExprKind::IsNull(_)
            | ExprKind::IsNotNull(_)
            | ExprKind::Match(..) => {
                let condition = self.condition(expr);
                quote! { Val::Bool(#condition) }
            }
        }
    }

    fn call(&mut self, function: Function, args: &[Expr]) -> TokenStream {
        let unary = |this: &mut Self, name: TokenStream| {
            let arg = this.value_ref(&args[0]);
            quote! { #name(#arg) }
        };
        match function {
            Function::Lower => unary(self, quote! { func::lower }),
            Function::Upper => unary(self, quote! { func::upper }),
            Function::Len => unary(self, quote! { func::len }),
            Function::Abs => unary(self, quote! { func::abs }),
            Function::Floor => unary(self, quote! { func::floor }),
            Function::Ceil => unary(self, quote! { func::ceil }),
            Function::Round => unary(self, quote! { func::round }),
            Function::ToString => unary(self, quote! { func::to_string }),
            Function::ToInt => unary(self, quote! { func::to_int }),
            Function::ToFloat => unary(self, quote! { func::to_float }),
            Function::Min | Function::Max | Function::Concat => {
                let name = match function {
                    Function::Min => quote! { func::min },
                    Function::Max => quote! { func::max },
                    _ => quote! { func::concat },
                };
                let items: Vec<TokenStream> = args.iter().map(|arg| self.value(arg)).collect();
                quote! { #name(&[#(#items),*]) }
            }
            Function::Contains | Function::StartsWith | Function::EndsWith => {
                let (lhs, rhs) = (self.value_ref(&args[0]), self.value_ref(&args[1]));
                let name = match function {
                    Function::Contains => quote! { func::contains },
                    Function::StartsWith => quote! { func::starts_with },
                    _ => quote! { func::ends_with },
                };
                quote! { #name(#lhs, #rhs) }
            }
            Function::Coalesce => {
                // One flat labelled block, so many arguments do not nest the generated code
                // (rustc and prettyplease recurse on nesting). Arguments stay lazy.
                let label =
                    syn::Lifetime::new(&format!("'coalesce_{}", self.n_open_coalesce), proc_macro2::Span::call_site());
                self.n_open_coalesce += 1;
                let (last, rest) = match args.split_last() {
                    Some((last, rest)) => (self.value(last), rest),
                    None => (quote! { Val::Null }, args),
                };
                let tries: Vec<TokenStream> = rest
                    .iter()
                    .map(|arg| {
                        let value = self.value(arg);
                        quote! {
                            let candidate = #value;
                            if !candidate.is_null() { break #label candidate; }
                        }
                    })
                    .collect();
                self.n_open_coalesce -= 1;
                quote! { #label: { #(#tries)* #last } }
            }
            Function::If => {
                let condition = self.condition(&args[0]);
                let (then, otherwise) = (self.value(&args[1]), self.value(&args[2]));
                quote! { if #condition { #then } else { #otherwise } }
            }
            Function::EventTime => quote! { Val::Int(record.event_time) },
            Function::EntryTime => quote! { Val::Int(record.entry_time) },
        }
    }
}

/// An expression of type `Result<String, String>` building a map's output text (G38).
pub fn map_output(
    keep: &[Path],
    remove: &[Path],
    set: &[(Path, Expr)],
    tree: &ViewTree,
    regexes: &mut Vec<String>,
) -> TokenStream {
    let mut emitter = Emitter { tree, regexes, counters: &[], n_open_coalesce: 0 };
    if map_fast_path(keep, remove, set) {
        let kept = keep.iter().filter(|path| !remove.contains(path) && !set.iter().any(|(target, _)| target == *path));
        let mut seen = Vec::new();
        let mut writes = Vec::new();
        for path in kept {
            if seen.contains(&path) {
                continue;
            }
            seen.push(path);
            let name = &path.0[0];
            let value = access(quote! { view }, tree, &path.0);
            writes.push(quote! {
                let value = #value;
                if !matches!(value, Val::Absent) {
                    if out.len() > 1 { out.push(','); }
                    json::write_str(&mut out, #name);
                    out.push(':');
                    json::write_val(&mut out, value);
                }
            });
        }
        for (path, expr) in set {
            let name = &path.0[0];
            let value = emitter.value(expr);
            writes.push(quote! {
                if out.len() > 1 { out.push(','); }
                json::write_str(&mut out, #name);
                out.push(':');
                json::write_val(&mut out, &#value);
            });
        }
        return quote! {{
            let mut out = String::with_capacity(64);
            out.push('{');
            #(#writes)*
            out.push('}');
            Ok::<String, String>(out)
        }};
    }
    let paths = |paths: &[Path]| {
        let items = paths.iter().map(|path| {
            let segments = &path.0;
            quote! { &[#(#segments),*][..] }
        });
        quote! { &[#(#items),*] }
    };
    let (keep, remove) = (paths(keep), paths(remove));
    let sets: Vec<TokenStream> = set
        .iter()
        .map(|(path, expr)| {
            let segments = &path.0;
            let value = emitter.value(expr);
            quote! { (&[#(#segments),*][..], #value) }
        })
        .collect();
    quote! { pulse_runtime::generated::reshape::reshape(record.text, #keep, #remove, &[#(#sets),*]) }
}
