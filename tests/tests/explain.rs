//! `pulsec explain`: every registered code has a page in `docs/errors/`, embedded in the binary,
//! and no page exists for a code that is not in the registry.

use pulse_syntax::codes::{self, Code};

#[test]
fn every_code_has_a_page() {
    let mut missing = Vec::new();
    for (code, title) in codes::ALL {
        match pulsec::explain_page(code.as_str()) {
            Some(page) => {
                let heading = format!("# {code}: {title}\n");
                assert!(page.starts_with(&heading), "the page of {code} must start with `{}`", heading.trim_end());
            }
            None => missing.push(code.as_str()),
        }
    }
    assert!(missing.is_empty(), "codes without a page in docs/errors/: {missing:?}");
}

#[test]
fn every_page_belongs_to_a_code() {
    let orphans: Vec<&str> =
        pulsec::PAGES.iter().map(|(code, _)| *code).filter(|code| Code::lookup(code).is_none()).collect();
    assert!(orphans.is_empty(), "pages in docs/errors/ for codes not in the registry: {orphans:?}");
    // The lookup is case-insensitive; a page file must still use the registry's spelling.
    for (code, _) in pulsec::PAGES {
        let registered = Code::lookup(code).expect("checked above");
        assert_eq!(*code, registered.as_str(), "page file name must be `{}.md`", registered.as_str());
    }
    assert_eq!(pulsec::PAGES.len(), codes::ALL.len(), "one page per code");
}

#[test]
fn explain_accepts_lower_case_and_rejects_unknown_codes() {
    assert_eq!(pulsec::explain_page("e0205"), pulsec::explain_page("E0205"));
    assert!(pulsec::explain_page("E9999").is_none());
    assert!(pulsec::explain_page("").is_none());
}

#[test]
fn every_operator_type_has_a_reference_page_that_explain_prints() {
    for node_type in pulse_check::NODE_TYPES {
        let page = pulsec::operator_page(node_type.name)
            .unwrap_or_else(|| panic!("no docs/reference/operators/{}.md", node_type.name));
        assert!(
            page.starts_with(&format!("# {}\n", node_type.name)),
            "the page of {} starts with its name",
            node_type.name
        );
        for alias in node_type.aliases {
            assert_eq!(pulsec::operator_page(alias), Some(page), "alias {alias}");
        }
    }
    assert_eq!(pulsec::OPERATOR_PAGES.len(), pulse_check::NODE_TYPES.len(), "one page per operator type");
    assert!(pulsec::operator_page("no-such-operator").is_none());
}
