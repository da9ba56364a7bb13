//! Printing: aligned plain-text tables for people, JSON for scripts.
//!
//! Each resource says how it looks in both through [`Resource`]; commands call [`one`]
//! or [`many`] and never format by hand.

use std::io::{self, Write};

use serde_json::Value;

/// How results are printed (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    // Aligned columns; one resource prints one field per line.
    #[default]
    Table,
    // An object for one resource, an array for a list.
    Json,
}

/// A printable resource.
pub trait Resource {
    /// Column titles of a list.
    const HEADERS: &'static [&'static str];
    /// One row of a list, aligned with [`Resource::HEADERS`].
    fn row(&self) -> Vec<String>;
    /// Every field, for showing one resource.
    fn fields(&self) -> Vec<(&'static str, String)>;
    /// The resource as JSON.
    fn json(&self) -> Value;
}

/// Prints one resource.
pub fn one<R: Resource>(out: &mut dyn Write, format: Format, r: &R) -> io::Result<()> {
    match format {
        Format::Table => fields(out, &r.fields()),
        Format::Json => json(out, &r.json()),
    }
}

/// Prints a list of resources.
pub fn many<R: Resource>(out: &mut dyn Write, format: Format, rs: &[R]) -> io::Result<()> {
    match format {
        Format::Table => table(out, R::HEADERS, rs.iter().map(Resource::row)),
        Format::Json => json(out, &Value::Array(rs.iter().map(Resource::json).collect())),
    }
}

/// Prints an ad-hoc result (a delete or import summary) in either format.
pub fn summary(out: &mut dyn Write, format: Format, pairs: &[(&'static str, String)], as_json: Value) -> io::Result<()> {
    match format {
        Format::Table => fields(out, pairs),
        Format::Json => json(out, &as_json),
    }
}

/// Pretty JSON and a newline.
pub fn json(out: &mut dyn Write, value: &Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// `name: value` lines, names padded to one width.
pub fn fields(out: &mut dyn Write, pairs: &[(&'static str, String)]) -> io::Result<()> {
    let width = pairs.iter().map(|(k, _)| k.chars().count() + 1).max().unwrap_or(0);
    for (k, v) in pairs {
        let label = format!("{k}:");
        // Multi-line values (pretty payloads) continue under the value column.
        let mut lines = v.lines();
        let first = format!("{label:<width$}  {}", lines.next().unwrap_or_default());
        writeln!(out, "{}", first.trim_end())?;
        for line in lines {
            writeln!(out, "{:<width$}  {line}", "")?;
        }
    }
    Ok(())
}

/// Columns separated by two spaces, each as wide as its widest cell.
pub fn table(out: &mut dyn Write, headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows.map(|r| r.into_iter().map(|c| cell(&c)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            let last = i + 1 == row.len();
            if last {
                line.push_str(c);
            } else {
                let w = widths.get(i).copied().unwrap_or(0);
                let pad = w.saturating_sub(c.chars().count());
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A table cell on one line: control characters (newlines, tabs) become spaces.
fn cell(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Shortens `s` to `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_flattens_cells() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a".to_owned(), "long value".to_owned(), "x".to_owned()],
            vec!["bbbb".to_owned(), "two\nlines".to_owned(), String::new()],
        ];
        table(&mut out, &["ID", "NAME", "END"], rows.into_iter()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "ID    NAME        END\na     long value  x\nbbbb  two lines\n");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
