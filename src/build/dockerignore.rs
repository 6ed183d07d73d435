//! `.dockerignore` with the Docker CLI's semantics (moby `patternmatcher` and
//! `pkg/archive.TarWithOptions`), so the context wactl sends is the one `docker build` sends.
//!
//! Parsing follows `ignorefile.ReadAll`: `#` comments only at the start of a line, blank
//! lines skipped, whitespace trimmed, each pattern `filepath.Clean`ed and made relative.
//! Matching follows `MatchesUsingParentResults`: later patterns win, `!` re-includes, a
//! pattern that matches a parent directory matches everything below it.

use regex::Regex;

/// One `.dockerignore` line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct PatternError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// The path equals the pattern.
    Exact,
    /// `foo/**`: the path starts with `foo/`.
    Prefix(String),
    /// `**/foo`: the path ends with `/foo` or is `foo`.
    Suffix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern without its `!`.
    text: String,
    exclusion: bool,
    matcher: Matcher,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

/// What a directory's own match left for its children (moby's `MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// The parsed `.dockerignore` of a context.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses `.dockerignore` text; an unusable pattern is an error naming its line.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            if raw.starts_with('#') {
                continue;
            }
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let (exclusion, body) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            if exclusion && body.is_empty() {
                return Err(PatternError {
                    line,
                    message: "illegal exclusion pattern: \"!\"".to_owned(),
                });
            }
            let mut cleaned = clean(body);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            // patternmatcher.New cleans once more (a no-op except for "/").
            let cleaned = clean(&cleaned);
            let matcher = compile(&cleaned).map_err(|message| PatternError {
                line,
                message: format!("pattern {body:?}: {message}"),
            })?;
            patterns.push(Pattern {
                text: cleaned,
                exclusion,
                matcher,
            });
        }
        Ok(Self { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern re-includes with `!`.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative, `/`-separated) is excluded, given its parent directory's
    /// result (`None` for entries at the top of the context).
    pub fn matches(&self, path: &str, parent: Option<&MatchInfo>) -> (bool, MatchInfo) {
        let parent_matched = parent.map(|p| p.parent_matched.as_slice()).unwrap_or(&[]);
        let mut matched = false;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent_matched.get(i).copied().unwrap_or(false);
            if !hit {
                // An inclusion cannot change an already excluded path, nor an exclusion
                // an included one.
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit
                    && parent_matched.is_empty()
                    && let Some((dir, _)) = path.rsplit_once('/')
                {
                    let mut end = 0;
                    for component in dir.split('/') {
                        end += component.len();
                        if pattern.matches(&dir[..end]) {
                            hit = true;
                            break;
                        }
                        end += 1;
                    }
                }
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }

    /// For an excluded directory: whether some `!` pattern may re-include something
    /// below it, so the walk must still descend (otherwise the whole tree is skipped).
    pub fn must_descend(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.text).starts_with(&dir_slash))
    }

    /// Whether `path` is excluded when looked at on its own (moby's
    /// `MatchesOrParentMatches`), as the daemon does for the Dockerfile and `.dockerignore`.
    pub fn excludes(&self, path: &str) -> bool {
        self.matches(path, None).0
    }
}

/// Translates one cleaned pattern the way moby's `Pattern.compile` does.
fn compile(pattern: &str) -> Result<Matcher, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let mut i = 0;
    let mut first = true;
    let mut in_class = false;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' && !in_class {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
        } else if ch == '?' && !in_class {
            re.push_str("[^/]");
            kind = Kind::Regex;
        } else if ch == '\\' {
            match chars.get(i) {
                Some(next) => {
                    re.push('\\');
                    re.push(*next);
                    i += 1;
                    kind = Kind::Regex;
                }
                None => re.push_str("\\\\"),
            }
        } else if ch == '[' && !in_class {
            in_class = true;
            re.push('[');
            kind = Kind::Regex;
            // filepath.Match negates a class with `^`, as regexp does; keep it.
            if chars.get(i) == Some(&'^') {
                re.push('^');
                i += 1;
            }
        } else if ch == ']' && in_class {
            in_class = false;
            re.push(']');
            kind = Kind::Regex;
        } else if !in_class && ".$^+(){}|".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else {
            re.push(ch);
        }
        first = false;
    }
    if in_class {
        return Err("syntax error in pattern (unclosed `[`)".to_owned());
    }
    match kind {
        Kind::Exact => Ok(Matcher::Exact),
        Kind::Prefix => Ok(Matcher::Prefix(
            pattern.strip_suffix("**").unwrap_or(pattern).to_owned(),
        )),
        Kind::Suffix => Ok(Matcher::Suffix(
            pattern.strip_prefix("**").unwrap_or(pattern).to_owned(),
        )),
        Kind::Regex => {
            re.push('$');
            Regex::new(&re)
                .map_err(|e| format!("syntax error in pattern: {e}"))
                .map(Matcher::Regex)
        }
    }
}

/// Go's `filepath.Clean` for `/`-separated paths: lexical, no file system access.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `path` is excluded, walking from the top the way the tar writer does.
    fn excluded(ignore: &DockerIgnore, path: &str) -> bool {
        let mut info: Option<MatchInfo> = None;
        let mut prefix = String::new();
        let components: Vec<&str> = path.split('/').collect();
        for (n, component) in components.iter().enumerate() {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            let (skip, next) = ignore.matches(&prefix, info.as_ref());
            let is_last = n + 1 == components.len();
            if skip && (is_last || !ignore.has_exclusions() || !ignore.must_descend(&prefix)) {
                return true;
            }
            if is_last {
                return skip;
            }
            info = Some(next);
        }
        false
    }

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).expect("valid patterns")
    }

    #[test]
    fn clean_is_lexical_like_go() {
        assert_eq!(clean("a//b/./c/"), "a/b/c");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("../a/../../b"), "../../b");
        assert_eq!(clean("./"), ".");
        assert_eq!(clean("/"), "/");
    }

    #[test]
    fn plain_names_match_at_the_top_and_everything_below() {
        let i = ignore("target\n");
        assert!(excluded(&i, "target"));
        assert!(excluded(&i, "target/debug/x"));
        assert!(!excluded(&i, "src/target"));
    }

    #[test]
    fn single_star_stays_within_one_component() {
        let i = ignore("*.md\n");
        assert!(excluded(&i, "README.md"));
        assert!(!excluded(&i, "docs/guide.md"));
        let i = ignore("*/*.md\n");
        assert!(excluded(&i, "docs/guide.md"));
        assert!(!excluded(&i, "docs/a/guide.md"));
    }

    #[test]
    fn double_star_matches_any_depth_including_none() {
        let i = ignore("**/*.md\n");
        assert!(excluded(&i, "README.md"));
        assert!(excluded(&i, "a/b/c.md"));
        let i = ignore("**/node_modules\n");
        assert!(excluded(&i, "node_modules/x"));
        assert!(excluded(&i, "web/node_modules/x/y"));
        let i = ignore("docs/**\n");
        assert!(excluded(&i, "docs/a"));
        assert!(!excluded(&i, "docs"));
        let i = ignore("a/**/b\n");
        assert!(excluded(&i, "a/b"));
        assert!(excluded(&i, "a/x/y/b"));
    }

    #[test]
    fn later_exceptions_reinclude_and_later_patterns_win() {
        let i = ignore("*.md\n!README.md\n");
        assert!(excluded(&i, "CHANGES.md"));
        assert!(!excluded(&i, "README.md"));
        let i = ignore("!README.md\n*.md\n");
        assert!(excluded(&i, "README.md"));
        let i = ignore("docs\n!docs/keep.txt\n");
        assert!(!excluded(&i, "docs/keep.txt"));
        assert!(excluded(&i, "docs/other.txt"));
    }

    #[test]
    fn an_exception_below_a_skipped_directory_needs_its_prefix() {
        // The CLI skips `docs` wholesale: no exception starts with `docs/`.
        let i = ignore("docs\n!**/keep.txt\n");
        assert!(excluded(&i, "docs/keep.txt"));
        assert!(!excluded(&i, "src/keep.txt"));
    }

    #[test]
    fn leading_slash_dot_segments_and_whitespace_are_normalised() {
        let i = ignore("  /target/  \n./build/../dist\n# comment\n \t\n");
        assert!(excluded(&i, "target/x"));
        assert!(excluded(&i, "dist"));
        assert!(!excluded(&i, "# comment"));
    }

    #[test]
    fn question_mark_classes_and_escapes() {
        let i = ignore("file?.txt\n[ab]*.log\nlit\\*eral\n");
        assert!(excluded(&i, "file1.txt"));
        assert!(!excluded(&i, "file10.txt"));
        assert!(excluded(&i, "a1.log"));
        assert!(!excluded(&i, "c1.log"));
        assert!(excluded(&i, "lit*eral"));
        assert!(!excluded(&i, "litXeral"));
        let i = ignore("[^a]*\n");
        assert!(!excluded(&i, "abc"));
        assert!(excluded(&i, "bcd"));
    }

    #[test]
    fn regex_metacharacters_are_literal() {
        let i = ignore("a+b.(c)$\n");
        assert!(excluded(&i, "a+b.(c)$"));
        assert!(!excluded(&i, "aab.(c)$"));
    }

    #[test]
    fn a_lone_bang_and_an_open_class_are_errors_with_their_line() {
        let e = DockerIgnore::parse("ok\n!\n").expect_err("lone !");
        assert_eq!(e.line, 2);
        let e = DockerIgnore::parse("# c\n[abc\n").expect_err("open class");
        assert_eq!(e.line, 2);
    }
}
