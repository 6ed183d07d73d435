//! Aligned columns for the listings a person reads (`history`, `status`, `validate --list`):
//! every column as wide as its widest cell, whatever the data, colour codes not counted.

/// How a column's cells sit in their width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A header row and data rows, printed with two spaces between columns.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers (upper case, as every listing spells them).
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            columns: columns
                .iter()
                .map(|(name, align)| (name.to_uppercase(), *align))
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines (no trailing spaces), header first.
    pub fn lines(&self) -> Vec<String> {
        let cell = |row: &[String], i: usize| row.get(i).cloned().unwrap_or_default();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                self.rows
                    .iter()
                    .map(|r| width(&cell(r, i)))
                    .chain([width(name)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<String> = self.columns.iter().map(|(n, _)| n.clone()).collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| {
                let mut line = String::new();
                for (i, (_, align)) in self.columns.iter().enumerate() {
                    let text = cell(row, i);
                    let pad = " ".repeat(widths[i].saturating_sub(width(&text)));
                    if i > 0 {
                        line.push_str("  ");
                    }
                    match align {
                        Align::Left => {
                            line.push_str(&text);
                            line.push_str(&pad);
                        }
                        Align::Right => {
                            line.push_str(&pad);
                            line.push_str(&text);
                        }
                    }
                }
                line.trim_end().to_owned()
            })
            .collect()
    }

    /// Prints the table on stdout (one `writeln!` per line: a closed pipe ends quietly).
    pub fn print(&self) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for line in self.lines() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

/// Columns a cell takes on a terminal: colour codes take none, wide characters two.
fn width(text: &str) -> usize {
    console::measure_text_width(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_the_widest_cell_whatever_the_data() {
        let mut table = Table::new(&[
            ("rev", Align::Right),
            ("by", Align::Left),
            ("image", Align::Left),
        ]);
        table.row(vec!["1".into(), "octocat".into(), "a:1".into()]);
        table.row(vec![
            "12".into(),
            "Jane Doe <jane@example.com>".into(),
            "a:2".into(),
        ]);
        table.row(vec!["3".into(), "\x1b[32mok\x1b[0m".into()]);
        let lines = table.lines();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "REV  BY                           IMAGE");
        assert_eq!(lines[1], "  1  octocat                      a:1");
        assert_eq!(lines[2], " 12  Jane Doe <jane@example.com>  a:2");
        // Colour codes take no width; a missing last cell leaves no trailing spaces.
        assert_eq!(lines[3], "  3  \x1b[32mok\x1b[0m");
        let image_column = lines[0].find("IMAGE").expect("header");
        for line in &lines[1..3] {
            assert_eq!(line.find("a:"), Some(image_column), "{line}");
        }
    }

    #[test]
    fn an_empty_table_is_its_header() {
        let table = Table::new(&[("name", Align::Left), ("kind", Align::Left)]);
        assert!(table.is_empty());
        assert_eq!(table.lines(), ["NAME  KIND"]);
    }
}
