//! libphonenumber's metadata as every function carries it: shared/data/PhoneNumberMetadata.xml
//! (kept as the phonenumber crate ships it) without its comments, indentation and example
//! numbers, which nothing reads at run time. A third of the size; phone::metadata's tests check
//! the result answers as the crate's full database does.

use std::{env, fs, path::Path};

const SOURCE: &str = "data/PhoneNumberMetadata.xml";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    let xml = fs::read_to_string(SOURCE).expect("shared/data/PhoneNumberMetadata.xml");
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("PhoneNumberMetadata.xml");
    fs::write(out, minify(&xml)).expect("the minified metadata");
}

fn minify(xml: &str) -> String {
    let xml = without(xml, "<!--", "-->");
    let xml = without(&xml, "<exampleNumber>", "</exampleNumber>");
    // A line break and its indentation go; inside a tag or a text they become one space, which
    // keeps attributes apart (patterns are compiled ignoring whitespace).
    let mut out = String::with_capacity(xml.len());
    let mut chars = xml.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            while out.ends_with([' ', '\t', '\r']) {
                out.pop();
            }
            if !out.ends_with('>') && chars.peek() != Some(&'<') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` without every `open`…`close` span.
fn without(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(open) {
        out.push_str(&rest[..at]);
        match rest[at..].find(close) {
            Some(len) => rest = &rest[at + len + close.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}
