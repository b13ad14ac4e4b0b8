use pulse_syntax::*;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mode = std::env::args().nth(2).unwrap_or_default();
    if mode == "fmt" {
        match format_pulse(FileId(0), &text) { Ok(t) => { print!("{t}"); let t2 = format_pulse(FileId(0), &t).map_err(|d| format!("{d:?}")).unwrap(); if t2 != t { println!("!!! NOT IDEMPOTENT\n{t2}"); } } Err(d) => println!("ERR {d:?}") }
        return;
    }
    if mode == "json" {
        let (doc, d) = pulse_syntax::json::parse_json_document(FileId(0), &text);
        for d in d { println!("json diag {} {}", d.code, d.message); }
        let t = print_pulse_document(&doc.unwrap());
        print!("{t}");
        let (doc2, d) = parse_pulse_document(FileId(1), &t);
        for d in d { println!("REPARSE diag {} {} {:?}", d.code, d.message, d.primary_span().map(|s| &t[s.range()])); }
        if doc2.is_none() { println!("!!! reparse failed"); }
        return;
    }
    let expr_mode = mode == "x";
    if expr_mode {
        for line in text.lines() {
            let (e, d) = parse_expr(FileId(0), line, 0);
            println!("{line}\n  => {:?}", e.map(|e| expr_print::print_expr(&e)));
            for d in d { println!("  {} {} {:?} [{}] help={:?}", d.code, d.message, d.primary_span().map(|s| &line[s.range()]), d.labels.iter().map(|l| l.message.clone()).collect::<Vec<_>>().join(" | "), d.help); }
        }
        return;
    }
    let (doc, diags) = parse_pulse_document(FileId(0), &text);
    for d in &diags {
        let s = d.primary_span().unwrap();
        let (l, c) = SourceMap::new().files().next().map(|_| (0,0)).unwrap_or_else(|| { let f = span::SourceFile::new("x".into(), text.clone()); f.line_col(s.start as usize) });
        println!("{} {}:{} {} [{:?}] labels={:?} help={:?}", d.code, l, c, d.message, &text[s.range()], d.labels.iter().map(|l| l.message.clone()).collect::<Vec<_>>(), d.help);
    }
    if let Some(doc) = doc {
        for s in &doc.settings { println!("setting {} = {:?}", s.key.node, short(&s.value)); }
        for n in &doc.nodes { println!("node {} : {} {}", n.id.node, n.kind.node, short(&n.config)); }
        for e in &doc.edges { println!("edge {}{} -> {}{}", e.from.node, e.from_port.as_ref().map(|p| format!(".{}", p.node)).unwrap_or_default(), e.to.node, e.to_port.as_ref().map(|p| format!(".{}", p.node)).unwrap_or_default()); }
    }
}
fn short(v: &ast::Value) -> String {
    use ast::ValueKind::*;
    match &v.kind {
        Null => "null".into(), Bool(b) => b.to_string(), Number(n) => format!("{n:?}"), String(s) => format!("{s:?}"),
        Array(a) => format!("[{}]", a.iter().map(short).collect::<Vec<_>>().join(", ")),
        Object(m) => format!("{{{}}}", m.iter().map(|m| format!("{}: {}", m.key.node, short(&m.value))).collect::<Vec<_>>().join(", ")),
        Duration(d) => format!("Dur({})", d.millis), Expr(e) => format!("Expr({})", expr_print::print_expr(e)),
    }
}
