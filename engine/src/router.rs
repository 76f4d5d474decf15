//! Compiled routes: a segment trie over raw request paths, with literal segments tried before
//! partial templates (`{name}.{ext}`) and those before whole-segment parameters, whatever the
//! document order.

use std::collections::HashMap;

use http::Method;

/// One part of a path segment template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Part {
    Literal(Box<str>),
    Parameter,
}

/// A segment that mixes literals and parameters, such as `{name}.{ext}` or `{id}:cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SegmentPattern {
    parts: Vec<Part>,
}

impl SegmentPattern {
    fn literal_length(&self) -> usize {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.len(),
                Part::Parameter => 0,
            })
            .sum()
    }

    /// Matches a raw segment, pushing one capture per parameter. When a literal follows a
    /// parameter, its last occurrence is tried first, so `archive.tar.csv` against
    /// `{name}.{ext}` gives `archive.tar` and `csv`.
    fn capture<'p>(&self, segment: &'p str, captures: &mut Vec<&'p str>) -> bool {
        let start = captures.len();
        if match_parts(&self.parts, segment, captures) {
            return true;
        }
        captures.truncate(start);
        false
    }
}

fn match_parts<'p>(parts: &[Part], text: &'p str, captures: &mut Vec<&'p str>) -> bool {
    match parts.split_first() {
        None => text.is_empty(),
        Some((Part::Literal(literal), rest)) => match text.strip_prefix(&**literal) {
            Some(remainder) => match_parts(rest, remainder, captures),
            None => false,
        },
        Some((Part::Parameter, rest)) => match rest.first() {
            None => {
                if text.is_empty() {
                    return false;
                }
                captures.push(text);
                true
            }
            Some(Part::Literal(literal)) => {
                for (position, _) in text.rmatch_indices(&**literal) {
                    if position == 0 {
                        continue;
                    }
                    let length = captures.len();
                    captures.push(&text[..position]);
                    if match_parts(rest, &text[position..], captures) {
                        return true;
                    }
                    captures.truncate(length);
                }
                false
            }
            // Two adjacent parameters are rejected when the template is parsed.
            Some(Part::Parameter) => false,
        },
    }
}

/// A parsed route template segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentTemplate {
    Literal(String),
    /// A whole-segment parameter; the name is `None` for a server variable.
    Parameter(Option<String>),
    /// A segment mixing literals and named parameters.
    Pattern(Vec<PatternPiece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternPiece {
    Literal(String),
    Parameter(String),
}

/// Splits a path template into segments. Returns an error message for an unclosed brace or
/// two adjacent parameters in one segment.
pub fn parse_template(path: &str) -> Result<Vec<SegmentTemplate>, String> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let mut segments = Vec::new();
    for raw in trimmed.split('/') {
        segments.push(parse_segment(raw)?);
    }
    Ok(segments)
}

fn parse_segment(raw: &str) -> Result<SegmentTemplate, String> {
    if !raw.contains('{') {
        return Ok(SegmentTemplate::Literal(raw.to_owned()));
    }
    let mut pieces = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let close = rest
                    .find('}')
                    .ok_or_else(|| format!("segment {raw:?} has an unclosed `{{`"))?;
                let name = &rest[1..close];
                if name.is_empty() {
                    return Err(format!("segment {raw:?} has an empty parameter name"));
                }
                if matches!(pieces.last(), Some(PatternPiece::Parameter(_))) {
                    return Err(format!(
                        "segment {raw:?} has two adjacent parameters, which cannot be split"
                    ));
                }
                pieces.push(PatternPiece::Parameter(name.to_owned()));
                rest = &rest[close + 1..];
            }
            Some(open) => {
                pieces.push(PatternPiece::Literal(rest[..open].to_owned()));
                rest = &rest[open..];
            }
            None => {
                pieces.push(PatternPiece::Literal(rest.to_owned()));
                rest = "";
            }
        }
    }
    if let [PatternPiece::Parameter(name)] = pieces.as_slice() {
        return Ok(SegmentTemplate::Parameter(Some(name.clone())));
    }
    Ok(SegmentTemplate::Pattern(pieces))
}

/// The rank of a route form. A path under a literal server base path (`/v1/users`) wins over
/// the bare path, and the bare path wins over a form whose base path has a server variable
/// without `enum`, because such a variable matches any segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoutePrecedence {
    VariableBasePath,
    Bare,
    LiteralBasePath,
}

/// One method registered at a trie leaf.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub method: Method,
    pub operation: usize,
    /// Names for the leaf's captures in order; `None` for server-variable captures.
    pub capture_names: Vec<Option<String>>,
    /// The rank of this form when two operations with the same method collide at one leaf.
    pub precedence: RoutePrecedence,
}

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<Box<str>, usize>,
    patterns: Vec<(SegmentPattern, usize)>,
    parameter: Option<usize>,
    entries: Vec<RouteEntry>,
}

/// A segment trie over all routes.
#[derive(Debug)]
pub struct Router {
    nodes: Vec<Node>,
    ignore_trailing_slash: bool,
}

/// A successful path match: the leaf's entries and the raw captured values.
pub struct PathMatch<'r, 'p> {
    pub entries: &'r [RouteEntry],
    pub captures: Vec<&'p str>,
}

impl Router {
    pub fn new(ignore_trailing_slash: bool) -> Self {
        Self {
            nodes: vec![Node::default()],
            ignore_trailing_slash,
        }
    }

    /// Inserts a route made of template segments. Returns `false` when the same method was
    /// already registered at that leaf by a form that takes precedence.
    pub fn insert(&mut self, segments: &[SegmentTemplate], entry: RouteEntry) -> bool {
        let mut node = 0;
        for segment in segments {
            node = match segment {
                SegmentTemplate::Literal(text) => {
                    match self.nodes[node].literals.get(text.as_str()) {
                        Some(child) => *child,
                        None => {
                            let child = self.push_node();
                            self.nodes[node]
                                .literals
                                .insert(text.as_str().into(), child);
                            child
                        }
                    }
                }
                SegmentTemplate::Parameter(_) => match self.nodes[node].parameter {
                    Some(child) => child,
                    None => {
                        let child = self.push_node();
                        self.nodes[node].parameter = Some(child);
                        child
                    }
                },
                SegmentTemplate::Pattern(pieces) => {
                    let pattern = SegmentPattern {
                        parts: pieces
                            .iter()
                            .map(|piece| match piece {
                                PatternPiece::Literal(text) => Part::Literal(text.as_str().into()),
                                PatternPiece::Parameter(_) => Part::Parameter,
                            })
                            .collect(),
                    };
                    let existing = self.nodes[node]
                        .patterns
                        .iter()
                        .find(|(known, _)| *known == pattern)
                        .map(|(_, child)| *child);
                    match existing {
                        Some(child) => child,
                        None => {
                            let child = self.push_node();
                            let patterns = &mut self.nodes[node].patterns;
                            patterns.push((pattern, child));
                            // More literal text is more specific, so it is tried first.
                            patterns.sort_by_key(|(pattern, _)| {
                                std::cmp::Reverse(pattern.literal_length())
                            });
                            child
                        }
                    }
                }
            };
        }

        let entries = &mut self.nodes[node].entries;
        if let Some(existing) = entries
            .iter_mut()
            .find(|known| known.method == entry.method)
        {
            if existing.precedence >= entry.precedence {
                return false;
            }
            *existing = entry;
            return true;
        }
        entries.push(entry);
        true
    }

    fn push_node(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Finds the most specific leaf for a raw path that `accepts` (a leaf serving the request
    /// method). Without one, returns the most specific leaf for the path with `false`, so that
    /// the caller can send a 405.
    pub fn find<'r, 'p>(
        &'r self,
        raw_path: &'p str,
        accepts: impl Fn(&[RouteEntry]) -> bool,
    ) -> Option<(PathMatch<'r, 'p>, bool)> {
        let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
        let mut segments: Vec<&'p str> = path.split('/').collect();
        let exact = self.find_segments(&segments, &accepts);
        if exact.is_some() || !self.ignore_trailing_slash {
            return exact;
        }
        // The other form, with or without the trailing slash, serves the path only when the
        // document does not declare this form itself (the exact search found nothing).
        if segments.len() > 1 && segments.last() == Some(&"") {
            segments.pop();
        } else if !path.is_empty() {
            segments.push("");
        }
        self.find_segments(&segments, &accepts)
    }

    fn find_segments<'r, 'p>(
        &'r self,
        segments: &[&'p str],
        accepts: &impl Fn(&[RouteEntry]) -> bool,
    ) -> Option<(PathMatch<'r, 'p>, bool)> {
        let mut first_leaf: Option<PathMatch<'r, 'p>> = None;
        let mut captures = Vec::new();
        let found = self.search(0, segments, &mut captures, accepts, &mut first_leaf);
        match found {
            Some(found) => Some((found, true)),
            None => first_leaf.map(|leaf| (leaf, false)),
        }
    }

    fn search<'r, 'p>(
        &'r self,
        node: usize,
        segments: &[&'p str],
        captures: &mut Vec<&'p str>,
        accepts: &impl Fn(&[RouteEntry]) -> bool,
        first_leaf: &mut Option<PathMatch<'r, 'p>>,
    ) -> Option<PathMatch<'r, 'p>> {
        let current = &self.nodes[node];
        let Some((segment, rest)) = segments.split_first() else {
            if current.entries.is_empty() {
                return None;
            }
            let found = PathMatch {
                entries: &current.entries,
                captures: captures.clone(),
            };
            if accepts(&current.entries) {
                return Some(found);
            }
            if first_leaf.is_none() {
                *first_leaf = Some(found);
            }
            return None;
        };

        if let Some(child) = current.literals.get(*segment) {
            if let Some(found) = self.search(*child, rest, captures, accepts, first_leaf) {
                return Some(found);
            }
        }
        for (pattern, child) in &current.patterns {
            let length = captures.len();
            if pattern.capture(segment, captures) {
                if let Some(found) = self.search(*child, rest, captures, accepts, first_leaf) {
                    return Some(found);
                }
            }
            captures.truncate(length);
        }
        if let Some(child) = current.parameter {
            if !segment.is_empty() {
                captures.push(segment);
                if let Some(found) = self.search(child, rest, captures, accepts, first_leaf) {
                    return Some(found);
                }
                captures.pop();
            }
        }
        None
    }

    /// Collects the methods of every leaf whose template matches the raw path, most specific
    /// leaf first. Used to build `Allow` lists.
    pub fn allowed_methods(&self, raw_path: &str) -> Vec<Method> {
        let collected = std::cell::RefCell::new(Vec::<Method>::new());
        self.find(raw_path, |entries| {
            let mut collected = collected.borrow_mut();
            for entry in entries {
                if !methods_contains(&collected, &entry.method) {
                    collected.push(entry.method.clone());
                }
            }
            // Never accept, so that the search visits every matching leaf.
            false
        });
        collected.into_inner()
    }
}

fn methods_contains(methods: &[Method], method: &Method) -> bool {
    methods.iter().any(|known| known == method)
}

/// Percent-decodes a captured path value. Returns `None` for an invalid escape (a `%` not
/// followed by two hex digits) or for bytes that are not UTF-8.
pub fn decode_component(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        if *byte == b'%' {
            let valid = bytes.get(index + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(index + 2).is_some_and(u8::is_ascii_hexdigit);
            if !valid {
                return None;
            }
        }
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(template: &str) -> SegmentPattern {
        let SegmentTemplate::Pattern(pieces) = parse_segment(template).unwrap() else {
            panic!("not a pattern")
        };
        SegmentPattern {
            parts: pieces
                .into_iter()
                .map(|piece| match piece {
                    PatternPiece::Literal(text) => Part::Literal(text.into()),
                    PatternPiece::Parameter(_) => Part::Parameter,
                })
                .collect(),
        }
    }

    fn captures(template: &str, segment: &str) -> Option<Vec<String>> {
        let mut captured = Vec::new();
        pattern(template)
            .capture(segment, &mut captured)
            .then(|| captured.into_iter().map(str::to_owned).collect())
    }

    #[test]
    fn pattern_splits_at_last_literal() {
        assert_eq!(
            captures("{name}.{ext}", "archive.tar.csv"),
            Some(vec!["archive.tar".into(), "csv".into()])
        );
        assert_eq!(
            captures("{base}...{head}", "main...feature"),
            Some(vec!["main".into(), "feature".into()])
        );
        assert_eq!(
            captures("{id}:cancel", "42:cancel"),
            Some(vec!["42".into()])
        );
        assert_eq!(captures("{id}:cancel", "42:stop"), None);
        assert_eq!(captures("{name}.{ext}", "noext"), None);
        assert_eq!(captures("{name}.{ext}", ".hidden"), None);
    }

    #[test]
    fn adjacent_parameters_rejected() {
        assert!(parse_segment("{a}{b}").is_err());
        assert!(parse_segment("{a").is_err());
    }

    #[test]
    fn decode_rejects_invalid_escape() {
        assert_eq!(decode_component("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(decode_component("a%zz"), None);
        assert_eq!(decode_component("a%2"), None);
        assert_eq!(decode_component("%FF"), None);
    }
}
