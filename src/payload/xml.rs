//! Well-formedness of XML payloads: one root element, matched tags, known entities.

use quick_xml::events::Event;
use quick_xml::Reader;

pub fn check_well_formed(document: &str) -> Result<(), String> {
    let mut reader = Reader::from_str(document);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Empty(_)) => {
                if depth == 0 {
                    roots += 1;
                }
            }
            Ok(Event::Text(text)) => {
                if depth == 0 && !text.iter().all(u8::is_ascii_whitespace) {
                    return Err("text outside the root element".to_owned());
                }
            }
            Ok(Event::GeneralRef(reference)) => {
                let known = matches!(&*reference, b"lt" | b"gt" | b"amp" | b"apos" | b"quot");
                if !known && !reference.is_char_ref() {
                    return Err(format!(
                        "unknown entity &{};",
                        String::from_utf8_lossy(&reference)
                    ));
                }
                if depth == 0 {
                    return Err("text outside the root element".to_owned());
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
    if depth != 0 {
        return Err("an element is not closed".to_owned());
    }
    if roots != 1 {
        return Err(format!("expected one root element, found {roots}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_well_formed;

    #[test]
    fn accepts_a_document_with_escaped_text() {
        assert!(check_well_formed(
            "<?xml version=\"1.0\"?><a x=\"1\"><b>&lt;&amp;&#233;</b><c/></a>"
        )
        .is_ok());
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in [
            "<a><b></a>",
            "<a>",
            "<a/><b/>",
            "text",
            "<a>&nbsp;</a>",
            "<a></a>tail",
        ] {
            assert!(check_well_formed(bad).is_err(), "{bad} passed");
        }
    }
}
