//! Environment definitions: parse each file, merge along `extends`, resolve and validate.
//!
//! `load` is a pure function of the files it reads; nothing downstream re-reads them.

pub mod duration;
pub mod error;
pub mod locate;
pub mod model;
pub mod names;
pub mod quantity;
mod resolve;
pub mod source;

pub use error::{ConfigError, Problem};
pub use model::Environment;
pub use resolve::{LOCAL_SERVICES, MAX_RATE_LIMIT_BURST, default_metrics};
pub use source::EnvironmentSource;

use locate::{FieldPositions, Position};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Environment files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// One definition file, parsed but not merged.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// Environment name (file stem).
    pub name: String,
    /// Path as shown to the user (the environment directory joined with the file name).
    pub path: PathBuf,
    pub text: String,
    pub source: EnvironmentSource,
    pub positions: FieldPositions,
}

/// Names of every environment in `dir` (`*.yaml`), sorted.
pub fn environment_names(dir: &Path) -> Result<Vec<String>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Problem::in_file(dir, format!("cannot read the environment directory: {e}"))
            .with_hint("run from the repository root or pass --env-dir DIR")
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && p.is_file())
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(
            Problem::in_file(dir, "no environment definitions (*.yaml) here")
                .with_hint("pass --env-dir DIR")
                .into(),
        );
    }
    Ok(names)
}

/// Loads, merges and resolves environment `name` from `dir`.
pub fn load(dir: &Path, name: &str) -> Result<Environment, ConfigError> {
    let chain = read_chain(dir, name)?;
    let files: Vec<String> = chain.iter().map(|f| format!("{}.yaml", f.name)).collect();
    let merged = Merged::new(&chain);
    let source: EnvironmentSource = serde_json::from_value(merged.value.clone()).map_err(|e| {
        Problem::in_file(
            &chain[0].path,
            format!("merged definition does not fit the format: {e}"),
        )
    })?;
    let locator = Locator {
        chain: &chain,
        provenance: &merged.provenance,
    };
    resolve::resolve(name, files, dir, source, &locator).map_err(ConfigError::from)
}

/// Parses and resolves one self-contained definition held in memory (no `extends`):
/// the whole path from text to model, for fuzzing and for tools that have no files.
pub fn load_from_str(name: &str, text: &str) -> Result<Environment, ConfigError> {
    let path = PathBuf::from(format!("{name}.yaml"));
    let source = parse_str(text, &path)?;
    if source.extends.is_some() {
        return Err(
            Problem::in_file(&path, "`extends` needs the environment directory")
                .field("extends")
                .into(),
        );
    }
    let file = ParsedFile {
        name: name.to_owned(),
        path: path.clone(),
        positions: FieldPositions::index(text),
        text: text.to_owned(),
        source,
    };
    let chain = [file];
    let merged = Merged::new(&chain);
    let source: EnvironmentSource = serde_json::from_value(merged.value.clone())
        .map_err(|e| Problem::in_file(&path, format!("definition does not fit the format: {e}")))?;
    let locator = Locator {
        chain: &chain,
        provenance: &merged.provenance,
    };
    resolve::resolve(
        name,
        vec![format!("{name}.yaml")],
        Path::new("."),
        source,
        &locator,
    )
    .map_err(ConfigError::from)
}

/// Reads `name` and the environments it extends, most specific first.
fn read_chain(dir: &Path, name: &str) -> Result<Vec<ParsedFile>, ConfigError> {
    let path = dir.join(format!("{name}.yaml"));
    if !path.is_file() {
        let known = environment_names(dir).unwrap_or_default();
        let mut problem = Problem::in_file(&path, format!("environment `{name}` does not exist"));
        problem = match closest(name, known.iter().map(String::as_str)) {
            Some(guess) => problem.with_hint(format!("did you mean `{guess}`?")),
            None if known.is_empty() => problem.with_hint("pass --env-dir DIR"),
            None => problem.with_hint(format!("environments here: {}", summarize(&known))),
        };
        return Err(problem.into());
    }
    let mut chain = vec![parse_file(&path, name)?];
    while let Some(target) = chain.last().and_then(|f| f.source.extends.clone()) {
        let child = chain
            .last()
            .map(|f| (f.path.clone(), f.text.clone(), f.positions.find("extends")))
            .unwrap_or_default();
        let (child_path, child_text, at) = child;
        let valid_name = !target.is_empty()
            && target
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid_name {
            return Err(Problem::in_file(
                &child_path,
                format!("`{target}` is not an environment name"),
            )
            .field("extends")
            .at(at, &child_text)
            .with_hint(
                "name another file of the same directory without `.yaml`, such as `extends: base`",
            )
            .into());
        }
        if chain.iter().any(|f| f.name == target) {
            let mut cycle: Vec<&str> = chain.iter().map(|f| f.name.as_str()).collect();
            cycle.push(&target);
            return Err(Problem::in_file(
                &child_path,
                format!("`extends` forms a cycle: {}", cycle.join(" → ")),
            )
            .field("extends")
            .at(at, &child_text)
            .with_hint("remove `extends` from one of these files")
            .into());
        }
        let target_path = dir.join(format!("{target}.yaml"));
        if !target_path.is_file() {
            let known = environment_names(dir).unwrap_or_default();
            let mut problem = Problem::in_file(
                &child_path,
                format!(
                    "extends `{target}`, but {} does not exist",
                    target_path.display()
                ),
            )
            .field("extends")
            .at(at, &child_text);
            if let Some(guess) = closest(&target, known.iter().map(String::as_str)) {
                problem = problem.with_hint(format!("did you mean `{guess}`?"));
            }
            return Err(problem.into());
        }
        chain.push(parse_file(&target_path, &target)?);
    }
    Ok(chain)
}

/// Reads and parses one file, refusing oversized and non-UTF-8 input.
pub fn parse_file(path: &Path, name: &str) -> Result<ParsedFile, ConfigError> {
    let file = std::fs::File::open(path)
        .map_err(|e| Problem::in_file(path, format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Problem::in_file(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Problem::in_file(
            path,
            format!(
                "file is larger than {} KiB; environment definitions are small",
                MAX_FILE_BYTES / 1024
            ),
        )
        .with_hint("check that this is the right file")
        .into());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        Problem::in_file(path, "file is not valid UTF-8")
            .at(Some(Position { line, column }), "")
            .with_hint("save the file as UTF-8")
    })?;
    let source = parse_str(&text, path)?;
    Ok(ParsedFile {
        name: name.to_owned(),
        path: path.to_owned(),
        positions: FieldPositions::index(&text),
        text,
        source,
    })
}

/// Parses definition text; `path` only names the file in errors.
pub fn parse_str(text: &str, path: &Path) -> Result<EnvironmentSource, ConfigError> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Err(Problem::in_file(path, "file is empty")
            .with_hint("an environment needs settings, at least `extends: base`")
            .into());
    }
    serde_saphyr::from_str::<EnvironmentSource>(text)
        .map_err(|e| syntax_problem(&e, text, path).into())
}

/// Turns a parser error into a located problem, in words a person can act on.
fn syntax_problem(error: &serde_saphyr::Error, text: &str, path: &Path) -> Problem {
    let at = error.location().map(|l| Position {
        line: usize::try_from(l.line()).unwrap_or(usize::MAX),
        column: usize::try_from(l.column()).unwrap_or(usize::MAX),
    });
    let at = at.filter(|p| p.line > 0);
    let full = error.without_snippet().to_string();
    let raw = strip_location_suffix(strip_location_prefix(&full));
    if let Some((bracket, at)) =
        unclosed_flow(text).filter(|(_, open)| at.is_none_or(|e| *open <= e))
    {
        let (what, close) = if bracket == '[' {
            ("sequence", ']')
        } else {
            ("mapping", '}')
        };
        return Problem::in_file(
            path,
            format!("unclosed flow {what}: `{bracket}` has no `{close}`"),
        )
        .at(Some(at), text)
        .with_hint(format!(
            "close it with `{close}` on the same value, or write the items as a block list"
        ));
    }
    let (message, hint) = explain(raw);
    let is_tab = message.starts_with("tab character");
    // The parser may notice a tab only on a later token: point at the tab itself.
    let at = if is_tab {
        first_tab(text, at).or(at)
    } else {
        at
    };
    let index = FieldPositions::index(text);
    let mut problem = Problem::in_file(path, message).at(at, text);
    if let Some(field) = at.and_then(|at| index.field_at(at).map(str::to_owned)) {
        problem = problem.field(field);
    }
    if let Some(key) = raw.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key);
        let field = problem.field.clone().unwrap_or_else(|| key.to_owned());
        let seen = index.occurrences(&field);
        if let Some(first) = seen.first().filter(|first| Some(**first) != at) {
            problem = problem.related(*first, format!("`{key}` first appears here"), text);
        }
    }
    match hint {
        Some(hint) => problem.with_hint(hint),
        None => problem,
    }
}

/// The first tab in a line's indentation, at or before `near` (the whole text without it).
fn first_tab(text: &str, near: Option<Position>) -> Option<Position> {
    let last = near.map_or(usize::MAX, |p| p.line);
    text.lines().enumerate().take(last).find_map(|(i, line)| {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        line[..indent].find('\t').map(|col| Position {
            line: i + 1,
            column: col + 1,
        })
    })
}

/// The first `[` or `{` of a flow collection that is never closed, outside quotes and
/// comments. Unclosed brackets make the parser fail far away (often at the next `key:`),
/// with a message about something else.
fn unclosed_flow(text: &str) -> Option<(char, Position)> {
    let mut open: Vec<(char, Position)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for (col, c) in line.chars().enumerate() {
            match (quote, c) {
                (Some('"'), '\\') if previous != '\\' => {}
                (Some(q), _) if c == q && !(q == '"' && previous == '\\') => quote = None,
                (Some(_), _) => {}
                // A quote starts a scalar only where a value or item may start.
                (None, '"' | '\'') if previous.is_whitespace() || "[{,:".contains(previous) => {
                    quote = Some(c);
                }
                (None, '#') if previous.is_whitespace() => break,
                (None, '[' | '{') if previous.is_whitespace() || "[{,".contains(previous) => open
                    .push((
                        c,
                        Position {
                            line: i + 1,
                            column: col + 1,
                        },
                    )),
                (None, ']' | '}') => {
                    open.pop();
                }
                _ => {}
            }
            previous = c;
        }
    }
    open.into_iter().next()
}

/// Rewords the parser's message and says what to do about it.
fn explain(raw: &str) -> (String, Option<String>) {
    if let Some(hint) = unknown_field_hint(raw) {
        let field = raw.split(',').next().unwrap_or(raw);
        return (field.to_owned(), Some(hint));
    }
    if raw.contains("found a tab") || raw.contains("tabs disallowed") {
        return (
            "tab character in indentation".to_owned(),
            Some("YAML indents with spaces only: replace the tab with spaces".to_owned()),
        );
    }
    if let Some(key) = raw.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key);
        return (
            format!("`{key}` appears twice in the same mapping"),
            Some("each key may appear once per mapping: remove one of them".to_owned()),
        );
    }
    if raw.starts_with("budget breached: Depth") {
        return (
            "YAML nesting deeper than the safety budget".to_owned(),
            Some("environment definitions nest a few levels deep: flatten the value".to_owned()),
        );
    }
    if raw.starts_with("budget breached") {
        return (
            "YAML aliases expand beyond the safety budget (a \"billion laughs\" document)"
                .to_owned(),
            Some(
                "environment definitions do not need anchors that multiply: write the values out"
                    .to_owned(),
            ),
        );
    }
    if raw.contains("expected mapping start") || raw.contains("expected struct") {
        return ("expected a mapping of settings (`key: value` lines)".to_owned(), Some("an environment file is a mapping such as `extends: base`, not a list or a single value".to_owned()));
    }
    for (ty, range) in [
        ("u16", "0 to 65535"),
        ("u32", "0 to 4294967295"),
        ("u64", "0 to 18446744073709551615"),
    ] {
        if raw == format!("invalid {ty}") || raw.ends_with(&format!("expected {ty}")) {
            return (format!("expected a whole number from {range}"), None);
        }
    }
    if raw == "invalid bool" || raw.ends_with("expected a boolean") {
        return ("expected true or false".to_owned(), None);
    }
    (raw.to_owned(), None)
}

fn strip_location_prefix(message: &str) -> &str {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    if message.starts_with("line ")
        && let Some(i) = message.find(": ")
    {
        return &message[i + 2..];
    }
    message
}

/// The parser repeats the place at the end ("… at line 2, column 3 (defined at …)").
fn strip_location_suffix(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// "unknown field `maxx`, expected one of min, max" → "did you mean `max`?".
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected ")?.1;
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    let candidates: Vec<&str> = expected
        .split(',')
        .map(|c| c.trim().trim_matches('`'))
        .filter(|c| !c.is_empty())
        .collect();
    match closest(field, candidates.iter().copied()) {
        Some(guess) => Some(format!("did you mean `{guess}`?")),
        None => Some(format!("known fields here: {}", candidates.join(", "))),
    }
}

/// At most eight names, then how many more.
fn summarize(names: &[String]) -> String {
    match names.len() {
        0..=8 => names.join(", "),
        n => format!("{}, and {} more", names[..8].join(", "), n - 8),
    }
}

/// The candidate most similar to `wanted`, if any is similar enough.
pub fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let wanted_lower = wanted.to_ascii_lowercase();
    candidates
        .map(|c| {
            (
                strsim::jaro_winkler(&wanted_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Lists whose items merge by `name` along `extends` (`smoke.checks`, `clusters`).
const NAMED_LISTS: &[&str] = &["checks", "clusters"];

/// The merged definition and, for each merged field path, which file (and which path
/// inside it) set it last.
struct Merged {
    value: Value,
    provenance: HashMap<String, (usize, String)>,
}

impl Merged {
    /// Merges `chain` (most specific first) from the least specific file up.
    fn new(chain: &[ParsedFile]) -> Self {
        let mut merged = Self {
            value: Value::Object(Default::default()),
            provenance: HashMap::new(),
        };
        for (index, file) in chain.iter().enumerate().rev() {
            let mut over = serde_json::to_value(&file.source).unwrap_or_default();
            if let Value::Object(map) = &mut over {
                map.remove("extends");
            }
            let mut value = std::mem::take(&mut merged.value);
            merged.overlay(&mut value, over, "", "", index);
            merged.value = value;
        }
        merged
    }

    fn overlay(
        &mut self,
        base: &mut Value,
        over: Value,
        merged_path: &str,
        file_path: &str,
        file: usize,
    ) {
        let join = |p: &str, k: &str| {
            if p.is_empty() {
                k.to_owned()
            } else {
                format!("{p}.{k}")
            }
        };
        match (base, over) {
            (Value::Object(base), Value::Object(over)) => {
                for (key, value) in over {
                    let (mp, fp) = (join(merged_path, &key), join(file_path, &key));
                    self.provenance.insert(mp.clone(), (file, fp.clone()));
                    match base.get_mut(&key) {
                        Some(existing)
                            if NAMED_LISTS.contains(&key.as_str()) && existing.is_array() =>
                        {
                            self.merge_named(existing, value, &mp, &fp, file);
                        }
                        Some(existing) if existing.is_object() && value.is_object() => {
                            self.overlay(existing, value, &mp, &fp, file);
                        }
                        _ => {
                            self.record(&value, &mp, &fp, file);
                            base.insert(key, value);
                        }
                    }
                }
            }
            (base, over) => {
                self.record(&over, merged_path, file_path, file);
                *base = over;
            }
        }
    }

    /// Lists of named items: same name replaces in place, new names are appended.
    fn merge_named(
        &mut self,
        base: &mut Value,
        over: Value,
        merged_path: &str,
        file_path: &str,
        file: usize,
    ) {
        let (Value::Array(items), Value::Array(new)) = (base, over) else {
            return;
        };
        for (j, item) in new.into_iter().enumerate() {
            let name = item.get("name").cloned();
            let slot = items
                .iter()
                .position(|existing| existing.get("name") == name.as_ref() && name.is_some());
            let m = slot.unwrap_or(items.len());
            self.record(
                &item,
                &format!("{merged_path}[{m}]"),
                &format!("{file_path}[{j}]"),
                file,
            );
            match slot {
                Some(m) => items[m] = item,
                None => items.push(item),
            }
        }
    }

    fn record(&mut self, value: &Value, merged_path: &str, file_path: &str, file: usize) {
        self.provenance
            .insert(merged_path.to_owned(), (file, file_path.to_owned()));
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    self.record(
                        v,
                        &format!("{merged_path}.{k}"),
                        &format!("{file_path}.{k}"),
                        file,
                    );
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.record(
                        v,
                        &format!("{merged_path}[{i}]"),
                        &format!("{file_path}[{i}]"),
                        file,
                    );
                }
            }
            _ => {}
        }
    }
}

struct Locator<'a> {
    chain: &'a [ParsedFile],
    provenance: &'a HashMap<String, (usize, String)>,
}

impl resolve::Locate for Locator<'_> {
    fn problem(&self, field: &str, message: String) -> Problem {
        let mut ancestor = field;
        let (file, path) = loop {
            if let Some((file, path)) = self.provenance.get(ancestor) {
                break (*file, format!("{path}{}", &field[ancestor.len()..]));
            }
            match ancestor.rfind(['.', '[']) {
                Some(cut) => ancestor = &ancestor[..cut],
                None => break (0, field.to_owned()),
            }
        };
        let parsed = &self.chain[file];
        Problem::in_file(&parsed.path, message)
            .field(field)
            .at(parsed.positions.find(&path), &parsed.text)
    }
}

#[cfg(test)]
mod tests;

/// The JSON Schema of environment files (what `wactl schema` prints).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(EnvironmentSource);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// The field reference of `docs/environment.md`, generated from the same docs as the
/// schema so the two never disagree.
pub fn reference_markdown() -> String {
    let schema = serde_json::to_value(schemars::schema_for!(EnvironmentSource)).unwrap_or_default();
    let mut out = String::new();
    describe_fields(&schema, &schema, "", &mut out);
    out
}

fn describe_fields(schema: &Value, node: &Value, prefix: &str, out: &mut String) {
    let node = resolve_ref(schema, node);
    let Some(properties) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let description = property
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        out.push_str(&format!(
            "### `{path}`\n\n{}\n\n",
            description.replace("```yaml", "\n```yaml")
        ));
        let target = object_target(schema, property);
        if let Some(target) = target {
            describe_fields(schema, target, &path, out);
        }
    }
}

/// The object schema behind a property (through `$ref`, `anyOf` with null, or a map's values).
fn object_target<'a>(schema: &'a Value, property: &'a Value) -> Option<&'a Value> {
    let property = resolve_ref(schema, property);
    if property.get("properties").is_some() {
        return Some(property);
    }
    if let Some(options) = property.get("anyOf").and_then(Value::as_array) {
        return options.iter().find_map(|o| object_target(schema, o));
    }
    if let Some(items) = property.get("items") {
        return object_target(schema, items);
    }
    None
}

fn resolve_ref<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    match node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => schema
            .get("$defs")
            .and_then(|d| d.get(name))
            .unwrap_or(node),
        None => node,
    }
}
