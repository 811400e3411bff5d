//! A small well-formedness check for the SVG pictures the crate and its tests generate.

/// Checks that `svg` is well-formed enough to be embedded: one root element, tags balanced and
/// properly nested, attribute values quoted, `&` only in the entities the generators write
/// (`&amp;`, `&lt;`, `&gt;`, `&quot;`), and no blank line (which would end the raw HTML block
/// when Markdown, such as rustdoc, includes the picture).
pub(crate) fn well_formed(svg: &str) -> Result<(), String> {
    if svg.lines().any(|l| l.trim().is_empty()) {
        return Err("a blank line would end the raw HTML block in Markdown".to_owned());
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let mut text = &rest[..open];
        while let Some(i) = text.find('&') {
            let entity = &text[i..];
            if !["&amp;", "&lt;", "&gt;", "&quot;"]
                .iter()
                .any(|e| entity.starts_with(e))
            {
                return Err(format!("a bare `&` in text: {entity:.20}"));
            }
            text = &text[i + 1..];
        }
        rest = &rest[open..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            let close = comment.find("-->").ok_or("an unclosed comment")?;
            rest = &comment[close + 3..];
            continue;
        }
        // The tag's end: the first `>` outside quotes.
        let mut quoted = false;
        let close = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == '>' && !quoted
            })
            .map(|(i, _)| i)
            .ok_or("an unclosed tag")?;
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("</{name}> with nothing open"))?;
            if open != name.trim() {
                return Err(format!("</{name}> closes <{open}>: tags cross"));
            }
        } else {
            let name = tag
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or_default();
            if name.is_empty() {
                return Err("a tag without a name".to_owned());
            }
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed: {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements, not one"));
    }
    if !rest.trim().is_empty() {
        return Err("text after the root".to_owned());
    }
    Ok(())
}
