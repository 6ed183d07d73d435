//! Just enough Dockerfile parsing to point at the line of a failing step.

/// One instruction: its first line (1-based) and its text with continuations joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    pub text: String,
}

/// Instructions in order, as the classic builder numbers its steps ("Step N/M").
pub fn instructions(dockerfile: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<Instruction> = None;
    for (index, raw) in dockerfile.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            // Comments and blank lines may sit inside a continued instruction.
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (trimmed, false),
        };
        let instruction = current.get_or_insert_with(|| Instruction {
            line: index + 1,
            text: String::new(),
        });
        if !instruction.text.is_empty() {
            instruction.text.push(' ');
        }
        instruction.text.push_str(body);
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// The text of line `line` (1-based).
pub fn line(dockerfile: &str, line: usize) -> Option<&str> {
    dockerfile.lines().nth(line.checked_sub(1)?)
}

/// `Step 3/12 : RUN …` → (3, 12).
pub fn parse_step(text: &str) -> Option<(usize, usize, String)> {
    let rest = text.strip_prefix("Step ")?;
    let (numbers, instruction) = rest.split_once(" : ")?;
    let (n, total) = numbers.split_once('/')?;
    Some((
        n.trim().parse().ok()?,
        total.trim().parse().ok()?,
        instruction.trim().to_owned(),
    ))
}

/// The line number in an engine message such as
/// "Dockerfile parse error line 5: unknown instruction: FOO".
pub fn line_in_message(message: &str) -> Option<usize> {
    let at = message.find("line ")?;
    let digits: String = message[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_skip_comments_and_join_continuations() {
        let text = "# syntax\nFROM a AS b\n\nRUN x \\\n  # note\n && y\nCOPY . .\n";
        let found = instructions(text);
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].line, 3 + 1);
        assert_eq!(found[1].text, "RUN x && y");
        assert_eq!(found[2].line, 7);
    }

    #[test]
    fn steps_and_message_lines_are_read() {
        assert_eq!(
            parse_step("Step 3/12 : RUN cargo build"),
            Some((3, 12, "RUN cargo build".to_owned()))
        );
        assert_eq!(parse_step(" ---> abc"), None);
        assert_eq!(
            line_in_message("Dockerfile parse error line 5: unknown instruction: FOO"),
            Some(5)
        );
        assert_eq!(line_in_message("no number"), None);
    }
}
