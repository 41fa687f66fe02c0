//! A port of Go's `text/tabwriter` column alignment, which shapes every kubectl table and
//! `describe` page.
//!
//! Go aligns a column only across consecutive lines that have a cell in it, so a line without
//! tabs (like `Events:`) starts a new block; `describe` layouts depend on that. Matching it
//! exactly is what makes netlab's output line up column for column with kubectl's.

/// kubectl's `get` tables: `tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)`.
pub const TABLE: Settings = Settings { min_width: 6, padding: 3 };

/// kubectl's `describe` pages: `tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)`.
pub const DESCRIBE: Settings = Settings { min_width: 0, padding: 2 };

/// The tabwriter parameters that matter with a space padding character.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Minimal cell width including padding.
    pub min_width: usize,
    /// Padding added to the widest cell of a column.
    pub padding: usize,
}

/// Aligns tab-separated text: cells terminated by `\t` form columns, the text after the last tab
/// of a line is not part of any column.
pub fn align(text: &str, settings: Settings) -> String {
    let ends_with_newline = text.ends_with('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut widths = Vec::new();
    let mut out = String::with_capacity(text.len() * 2);
    format(&lines, 0, lines.len(), &mut widths, settings, &mut out);
    // `format` writes a newline after every line; match the input's last line ending.
    if !ends_with_newline {
        out.pop();
    }
    out
}

fn width(cell: &str) -> usize {
    cell.chars().count()
}

/// Go's `Writer.format`: finds column blocks recursively, then writes lines once the widths of
/// all columns to their left are known.
fn format(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    s: Settings,
    out: &mut String,
) {
    let column = widths.len();
    let mut start = line0;
    let mut this = line0;
    while this < line1 {
        // The last cell of a line is not tab-terminated and belongs to no column.
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, start, this, widths, out);
        let block_start = this;
        let mut w = s.min_width;
        while this < line1 && column + 1 < lines[this].len() {
            w = w.max(width(lines[this][column]) + s.padding);
            this += 1;
        }
        widths.push(w);
        format(lines, block_start, this, widths, s, out);
        widths.pop();
        start = this;
    }
    write_lines(lines, start, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                for _ in width(cell)..widths[j] {
                    out.push(' ');
                }
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_are_padded_by_three() {
        let got = align("NAME\tTYPE\tAGE\norders\tClusterIP\t5s\na\tNodePort\t10m\n", TABLE);
        assert_eq!(got, "NAME     TYPE        AGE\norders   ClusterIP   5s\na        NodePort    10m\n");
    }

    #[test]
    fn min_width_applies() {
        assert_eq!(align("A\tB\nx\ty\n", TABLE), "A     B\nx     y\n");
    }

    #[test]
    fn lines_without_tabs_split_blocks() {
        let text = "Name:\tx\nLonger Key:\ty\nEvents:\n  Type\tReason\n  ----\t------\n";
        assert_eq!(
            align(text, DESCRIBE),
            "Name:        x\nLonger Key:  y\nEvents:\n  Type  Reason\n  ----  ------\n"
        );
    }

    #[test]
    fn inner_columns_align_within_their_own_block() {
        let text = "Port:\thttp\t80/TCP\nTargetPort:\t8080/TCP\nEndpoints:\t<none>\n";
        assert_eq!(
            align(text, DESCRIBE),
            "Port:        http  80/TCP\nTargetPort:  8080/TCP\nEndpoints:   <none>\n"
        );
    }
}
