//! HTML forms and text, read with a real HTML parser (`scraper`): what a browser would submit
//! and what a user would read.

use super::*;
use scraper::{ElementRef, Html, Selector};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct Input {
    /// `input` or `button`.
    pub tag: String,
    /// The `type` attribute, lower-cased (`text` when absent on an input, `submit` on a button).
    pub kind: String,
    pub name: String,
    pub value: String,
    /// A checkbox or radio button that is checked (a browser submits only those).
    pub checked: bool,
}

#[derive(Clone, Debug)]
pub struct Form {
    pub action: String,
    pub method: String,
    pub enctype: Option<String>,
    pub inputs: Vec<Input>,
}

impl Form {
    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.name == name)
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.input(name).map(|i| i.value.as_str())
    }
    pub fn has_button(&self, name: &str, value: &str) -> bool {
        self.inputs.iter().any(|i| i.name == name && i.value == value && matches!(i.kind.as_str(), "submit" | "button"))
    }
}

pub fn login_form(page: &Resp) -> Option<Form> {
    page.forms().into_iter().find(|f| f.inputs.iter().any(|i| i.kind == "password") && f.input("username").is_some())
}

pub fn consent_form(page: &Resp) -> Option<Form> {
    page.forms().into_iter().find(|f| f.has_button("decision", "allow") || f.has_button("decision", "deny"))
}

/// The text of the first element with `id="ID"`, trimmed.
pub fn element_text(page: &Resp, id: &str) -> Option<String> {
    let doc = Html::parse_document(&page.body);
    let el = doc.select(&selector(&format!("[id=\"{}\"]", css_string(id)))).next()?;
    Some(el.text().collect::<String>().trim().to_string())
}

/// The recovery codes listed on a "Your recovery codes" page.
pub fn recovery_codes(page: &Resp) -> Vec<String> {
    let doc = Html::parse_document(&page.body);
    let list = doc.select(&selector("#recovery-codes")).next().unwrap_or_else(|| panic!("no recovery codes: {page:?}"));
    list.select(&selector("code")).map(|c| c.text().collect()).collect()
}

/// The text of `s`, an HTML attribute value or text as it appears in the source, with its
/// character references decoded (by the parser).
pub fn unescape_html(s: &str) -> String {
    let doc = Html::parse_fragment(&format!("<i title=\"{}\"></i>", s.replace('"', "&quot;")));
    let i = doc.select(&selector("i")).next().expect("the fragment has its element");
    i.value().attr("title").unwrap_or_default().to_string()
}

/// Every `<TAG>` element in HTML, in document order: its position among them and its attributes
/// (names lower-cased, values decoded).
pub fn tags(html: &str, tag: &str) -> Vec<(usize, HashMap<String, String>)> {
    let doc = Html::parse_document(html);
    doc.select(&selector(tag)).map(attributes).enumerate().collect()
}

/// Every form in HTML with the inputs and buttons inside it, as a browser would submit them.
pub fn forms(html: &str) -> Vec<Form> {
    let doc = Html::parse_document(html);
    let controls = selector("input, button");
    doc.select(&selector("form"))
        .map(|form| {
            let a = attributes(form);
            Form {
                action: a.get("action").cloned().unwrap_or_default(),
                method: a.get("method").map(|m| m.to_ascii_lowercase()).unwrap_or("get".into()),
                enctype: a.get("enctype").cloned(),
                inputs: form.select(&controls).map(input).collect(),
            }
        })
        .collect()
}

fn input(el: ElementRef) -> Input {
    let tag = el.value().name().to_string();
    let default_kind = if tag == "button" { "submit" } else { "text" };
    let attr = |name| el.value().attr(name).map(str::to_string);
    Input {
        kind: attr("type").map(|t| t.to_ascii_lowercase()).unwrap_or(default_kind.into()),
        name: attr("name").unwrap_or_default(),
        value: attr("value").unwrap_or_default(),
        checked: el.value().attr("checked").is_some(),
        tag,
    }
}

fn attributes(el: ElementRef) -> HashMap<String, String> {
    el.value().attrs().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("selector {css:?}: {e}"))
}

/// `s` inside a double-quoted CSS string.
fn css_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
