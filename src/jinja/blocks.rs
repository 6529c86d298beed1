//! Finds top-level Jinja blocks in a file: `{% macro %}`, `{% test %}`,
//! `{% docs %}`, `{% snapshot %}`, `{% materialization %}`, each with its
//! name, argument list, full text and line, without rendering anything.

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: String,
    pub name: String,
    /// The raw argument list between the parentheses (macros and tests).
    pub args: Option<String>,
    /// The whole block including its opening and closing tags.
    pub full: String,
    /// The text between the opening and closing tags.
    pub body: String,
    /// 1-based line of the opening tag.
    pub line: usize,
    /// Byte offsets of `full` in the file.
    pub span: (usize, usize),
}

impl Block {
    /// Where dbt's block lexer cuts the block from the file (dbt's
    /// `macro_sql`): with the whitespace before a `{%-` opening tag (from
    /// `floor` on: the end of the previous block) and after a `-%}` closing
    /// tag, within the file stripped of surrounding whitespace.
    pub fn dbt_span(&self, file: &str, floor: usize) -> (usize, usize) {
        let (first, last) = (file.len() - file.trim_start().len(), file.trim_end().len());
        let (mut start, mut end) = self.span;
        if file[start..].starts_with("{%-") {
            start = first.max(floor).max(file[..start].trim_end().len()).min(start);
        }
        if file[..end].ends_with("-%}") {
            end = last.min(file.len() - file[end..].trim_start().len()).max(end);
        }
        (start, end)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BlockError {
    pub line: usize,
    pub message: String,
}

const KINDS: &[&str] = &["macro", "test", "docs", "snapshot", "materialization"];

/// Scans `text` for the top-level blocks of the given `kinds`.
pub fn find_blocks(text: &str, kinds: &[&str]) -> Result<Vec<Block>, BlockError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rel) = text[pos..].find("{%") {
        let start = pos + rel;
        // a `{# comment #}` before the tag hides what it holds (dbt's lexer skips it)
        if let Some(c) = text[pos..start].find("{#") {
            match text[pos + c + 2..].find("#}") {
                Some(end) => {
                    pos = pos + c + 2 + end + 2;
                    continue;
                }
                None => return Err(BlockError { line: line_of(text, pos + c), message: "unclosed '{#' comment".into() }),
            }
        }
        let Some(tag_end_rel) = text[start..].find("%}") else {
            return Err(BlockError { line: line_of(text, start), message: "unclosed '{%' tag".into() });
        };
        let tag_end = start + tag_end_rel + 2;
        let inner = text[start + 2..tag_end - 2].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let word: String = inner.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if word == "raw" {
            // Skip raw blocks entirely.
            match find_end_tag(text, tag_end, "endraw") {
                Some((_, after)) => {
                    pos = after;
                    continue;
                }
                None => return Err(BlockError { line: line_of(text, start), message: "'{% raw %}' without '{% endraw %}'".into() }),
            }
        }
        if !KINDS.contains(&word.as_str()) || !kinds.contains(&word.as_str()) {
            pos = tag_end;
            continue;
        }
        let rest = inner[word.len()..].trim_start();
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect();
        if name.is_empty() {
            return Err(BlockError { line: line_of(text, start), message: format!("'{{% {word} %}}' needs a name, e.g. '{{% {word} my_name(...) %}}'") });
        }
        let after_name = rest[name.len()..].trim();
        let args = if after_name.starts_with('(') {
            match matching_paren(after_name) {
                Some(end) => Some(after_name[1..end].to_string()),
                None => {
                    return Err(BlockError { line: line_of(text, start), message: format!("{word} '{name}': unbalanced parentheses in its argument list") });
                }
            }
        } else {
            None
        };
        let end_word = format!("end{word}");
        let Some((end_start, end_after)) = find_end_tag(text, tag_end, &end_word) else {
            return Err(BlockError { line: line_of(text, start), message: format!("{word} '{name}' has no '{{% {end_word} %}}'") });
        };
        out.push(Block {
            kind: word.clone(),
            name,
            args,
            full: text[start..end_after].to_string(),
            body: text[tag_end..end_start].to_string(),
            line: line_of(text, start),
            span: (start, end_after),
        });
        pos = end_after;
    }
    Ok(out)
}

/// Finds `{% <word> %}` (any whitespace control) from `from`; returns
/// (start of tag, end of tag).
fn find_end_tag(text: &str, from: usize, word: &str) -> Option<(usize, usize)> {
    let mut pos = from;
    while let Some(rel) = text[pos..].find("{%") {
        let start = pos + rel;
        let end = start + text[start..].find("%}")? + 2;
        let inner = text[start + 2..end - 2].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if inner == word || inner.starts_with(&format!("{word} ")) {
            return Some((start, end));
        }
        pos = end;
    }
    None
}

fn matching_paren(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
    }
    None
}

/// Splits an argument list at top-level commas; returns (name, default text).
pub fn parse_args(args: &str) -> Vec<(String, Option<String>)> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut cur = String::new();
    for c in args.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                cur.push(c);
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '(' | '[' | '{' => {
                    depth += 1;
                    cur.push(c);
                }
                ')' | ']' | '}' => {
                    depth -= 1;
                    cur.push(c);
                }
                ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            },
        }
    }
    if !cur.trim().is_empty() {
        parts.push(cur);
    }
    parts
        .into_iter()
        .map(|p| match p.split_once('=') {
            Some((n, d)) => (n.trim().to_string(), Some(d.trim().to_string())),
            None => (p.trim().to_string(), None),
        })
        .filter(|(n, _)| !n.is_empty())
        .collect()
}

pub fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_blocks_as_dbts_lexer_and_skips_comments() {
        // dbt's extract_toplevel_blocks on a stripped file: a `{%-` takes the
        // whitespace before it (not the previous block's), a `-%}` the whitespace after
        let text = "\n\n{%- macro a() -%}\nx\n{%- endmacro -%}\n\n{%- macro b() %}y{% endmacro %}\n{# {% macro c() %}{% endmacro %} #}\n  {%- macro d() -%}z{%- endmacro -%}\n\n";
        let blocks = find_blocks(text, &["macro"]).unwrap();
        assert_eq!(blocks.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["a", "b", "d"]);
        let mut floor = 0;
        let cut: Vec<&str> = blocks
            .iter()
            .map(|b| {
                let (s, e) = b.dbt_span(text, floor);
                floor = e;
                &text[s..e]
            })
            .collect();
        assert_eq!(cut, ["{%- macro a() -%}\nx\n{%- endmacro -%}\n\n", "{%- macro b() %}y{% endmacro %}", "\n  {%- macro d() -%}z{%- endmacro -%}"]);
    }

    #[test]
    fn finds_macros_with_args_and_lines() {
        let text = "-- x\n{% macro a(x, y=1, z='a,b') %}A{% endmacro %}\n\n{%- test t(model, column_name) -%}\nselect 1\n{%- endtest %}";
        let blocks = find_blocks(text, &["macro", "test"]).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].name, "a");
        assert_eq!(blocks[0].line, 2);
        assert_eq!(blocks[0].body, "A");
        assert_eq!(
            parse_args(blocks[0].args.as_deref().unwrap()),
            vec![("x".into(), None), ("y".into(), Some("1".into())), ("z".into(), Some("'a,b'".into()))]
        );
        assert_eq!(blocks[1].kind, "test");
        assert_eq!(blocks[1].line, 4);
    }

    #[test]
    fn unterminated_block_names_line() {
        let err = find_blocks("\n{% macro a() %} x", &["macro"]).unwrap_err();
        assert_eq!(err.to_string(), "line 2: macro 'a' has no '{% endmacro %}'");
    }
}
