//! Where each field of a YAML file sits, so problems found after parsing still point at
//! a line and column.

use serde_saphyr::granit_parser::{Event, Parser};
use std::collections::HashMap;

/// A 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Field path (`autoscaling.max`, `smoke.checks[1].path`) → position of its key.
#[derive(Debug, Default, Clone)]
pub struct FieldPositions {
    positions: HashMap<String, Position>,
    /// Every key in file order, repeats included (a duplicate key has two entries).
    keys: Vec<(String, Position)>,
}

impl FieldPositions {
    /// Indexes `text`; a file that does not parse yields whatever was indexed before the
    /// error (parse errors themselves are reported by the deserializer).
    pub fn index(text: &str) -> Self {
        let mut index = Indexer::default();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let at = Position {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            index.event(&event, at);
        }
        Self {
            positions: index.positions,
            keys: index.keys,
        }
    }

    /// Where `path`'s key appears, in file order (more than once when duplicated).
    pub fn occurrences(&self, path: &str) -> Vec<Position> {
        self.keys
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, at)| *at)
            .collect()
    }

    /// Position of `path`, or of its nearest indexed ancestor.
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(found) = self.positions.get(path) {
                return Some(*found);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    /// The field whose key is the last one before `at` on the same line.
    pub fn field_at(&self, at: Position) -> Option<&str> {
        self.positions
            .iter()
            .filter(|(path, p)| p.line == at.line && p.column <= at.column && !path.ends_with(']'))
            .max_by_key(|(_, p)| p.column)
            .map(|(path, _)| path.as_str())
    }
}

enum Frame {
    /// A mapping; `pending_key` is set between a key and its value.
    Mapping {
        path: String,
        pending_key: Option<String>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Indexer {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
    keys: Vec<(String, Position)>,
}

impl Indexer {
    /// The path of the node that starts now, consuming a pending key or sequence slot.
    fn node_path(&mut self, at: Position) -> Option<String> {
        match self.stack.last_mut()? {
            Frame::Mapping { pending_key, .. } => pending_key.take(),
            Frame::Sequence { path, next } => {
                let child = format!("{path}[{next}]");
                *next += 1;
                self.positions.entry(child.clone()).or_insert(at);
                Some(child)
            }
        }
    }

    fn event(&mut self, event: &Event<'_>, at: Position) {
        match event {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Mapping {
                    path,
                    pending_key: pending @ None,
                }) = self.stack.last_mut()
                {
                    let key = if path.is_empty() {
                        value.to_string()
                    } else {
                        format!("{path}.{value}")
                    };
                    self.positions.insert(key.clone(), at);
                    self.keys.push((key.clone(), at));
                    *pending = Some(key);
                } else {
                    self.node_path(at);
                }
            }
            Event::Alias(_) => {
                self.node_path(at);
            }
            Event::MappingStart(..) => {
                let path = self.node_path(at).unwrap_or_default();
                self.stack.push(Frame::Mapping {
                    path,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.node_path(at).unwrap_or_default();
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_list_items() {
        let text = "app:\n  name: x\nautoscaling:\n  min: 3\n  max: 2\nsmoke:\n  checks:\n    - name: a\n    - name: b\n      path: /x\n";
        let index = FieldPositions::index(text);
        assert_eq!(
            index.find("autoscaling.max"),
            Some(Position { line: 5, column: 3 })
        );
        assert_eq!(
            index.find("smoke.checks[1].path"),
            Some(Position {
                line: 10,
                column: 7
            })
        );
        assert_eq!(
            index.find("smoke.checks[1].nope"),
            Some(Position { line: 9, column: 7 })
        );
        assert_eq!(index.find("app"), Some(Position { line: 1, column: 1 }));
        assert_eq!(index.find("missing"), None);
    }

    #[test]
    fn flow_mappings_are_indexed() {
        let index = FieldPositions::index("resources:\n  requests: { cpu: 2, memory: 1Gi }\n");
        assert_eq!(
            index.find("resources.requests.memory"),
            Some(Position {
                line: 2,
                column: 23
            })
        );
    }
}
