//! Generation of strings that match a `pattern` (an ECMA-262 regular expression in OpenAPI),
//! read with `regex-syntax`, which accepts the common subset of that syntax. Patterns it cannot
//! parse (such as look-arounds) are ignored, and the string is generated without them.

use std::sync::Arc;

use regex_syntax::hir::{Class, Hir, HirKind};

/// The maximum number of repetitions generated beyond a repetition's minimum (for `*`, `+`, `{n,}`).
const MAX_EXTRA_REPETITIONS: u32 = 8;
/// The maximum length in bytes of the text generated for one pattern.
const MAX_PATTERN_OUTPUT: usize = 4096;

/// A `pattern` compiled for generation (`hir`) and for validation (`regex`).
pub struct CompiledPattern {
    pub hir: Arc<Hir>,
    pub regex: regex::Regex,
}

/// Translates an ECMA-262 pattern and compiles it once, at compile time. Returns an error
/// naming the construct for patterns outside the syntax the `regex` crate supports, such as
/// look-arounds and back-references.
pub fn compile_pattern(pattern: &str) -> Result<CompiledPattern, String> {
    let translated = translate_ecma(pattern)?;
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(&translated)
        .map_err(|error| format!("it does not parse ({})", last_line(&error.to_string())))?;
    let regex = regex::Regex::new(&translated)
        .map_err(|error| format!("it does not compile ({})", last_line(&error.to_string())))?;
    Ok(CompiledPattern {
        hir: Arc::new(hir),
        regex,
    })
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or(text).trim()
}

/// Rewrites the ECMA-262 escapes that Rust's `regex` spells differently (`\uXXXX`, `\u{X}`,
/// `\cX` and `\/`) and rejects look-arounds and back-references.
// NOTE: `\d`, `\w` and `\s` match Unicode classes in Rust but ASCII classes in ECMA-262, so
// validation accepts some non-ASCII digits and letters that a browser would reject.
pub fn translate_ecma(pattern: &str) -> Result<String, String> {
    let characters: Vec<char> = pattern.chars().collect();
    let mut output = String::with_capacity(pattern.len());
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        if character == '(' && characters.get(index + 1) == Some(&'?') {
            let next: String = characters[index + 2..].iter().take(2).collect();
            if next.starts_with('=') || next.starts_with('!') || next == "<=" || next == "<!" {
                return Err("it uses a look-around assertion".to_owned());
            }
        }
        if character != '\\' {
            output.push(character);
            index += 1;
            continue;
        }
        let Some(&escaped) = characters.get(index + 1) else {
            return Err("it ends with a lone backslash".to_owned());
        };
        match escaped {
            '1'..='9' => return Err("it uses a back-reference".to_owned()),
            'k' if characters.get(index + 2) == Some(&'<') => {
                return Err("it uses a named back-reference".to_owned())
            }
            'u' if characters.get(index + 2) == Some(&'{') => {
                output.push_str("\\x");
                index += 2;
            }
            'u' => {
                let hex: String = characters[index + 2..].iter().take(4).collect();
                if hex.len() == 4 && hex.chars().all(|digit| digit.is_ascii_hexdigit()) {
                    output.push_str(&format!("\\x{{{hex}}}"));
                    index += 6;
                } else {
                    output.push('u');
                    index += 2;
                }
            }
            'c' => {
                let Some(letter) = characters.get(index + 2).filter(|letter| letter.is_ascii_alphabetic()) else {
                    return Err("it uses `\\c` without a letter".to_owned());
                };
                output.push_str(&format!("\\x{{{:02X}}}", (*letter as u32) % 32));
                index += 3;
            }
            '/' => {
                output.push('/');
                index += 2;
            }
            _ => {
                output.push('\\');
                output.push(escaped);
                index += 2;
            }
        }
    }
    Ok(output)
}

/// Generates a string that matches the pattern, choosing repetitions, alternatives and class
/// members from the seed.
pub fn generate_matching(hir: &Hir, seed: u64) -> String {
    let mut generator = PatternGenerator {
        state: seed,
        output: String::new(),
    };
    generator.walk(hir);
    generator.output
}

struct PatternGenerator {
    state: u64,
    output: String,
}

impl PatternGenerator {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut value = self.state;
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }

    fn walk(&mut self, hir: &Hir) {
        if self.output.len() >= MAX_PATTERN_OUTPUT {
            return;
        }
        match hir.kind() {
            HirKind::Empty | HirKind::Look(_) => {}
            HirKind::Literal(literal) => self.output.push_str(&String::from_utf8_lossy(&literal.0)),
            HirKind::Class(class) => {
                if let Some(character) = self.pick_class_member(class) {
                    self.output.push(character);
                }
            }
            HirKind::Repetition(repetition) => {
                let extra_limit = match repetition.max {
                    Some(max) => max
                        .saturating_sub(repetition.min)
                        .min(MAX_EXTRA_REPETITIONS),
                    None => MAX_EXTRA_REPETITIONS,
                };
                // At least one repetition reads more naturally for `*` and `?`.
                let floor = if repetition.min == 0 && extra_limit > 0 {
                    1
                } else {
                    0
                };
                let extra = if extra_limit > floor {
                    floor + (self.next() % u64::from(extra_limit - floor + 1)) as u32
                } else {
                    floor
                };
                for _ in 0..repetition.min.saturating_add(extra) {
                    self.walk(&repetition.sub);
                    if self.output.len() >= MAX_PATTERN_OUTPUT {
                        break;
                    }
                }
            }
            HirKind::Capture(capture) => self.walk(&capture.sub),
            HirKind::Concat(parts) => {
                for part in parts {
                    self.walk(part);
                }
            }
            HirKind::Alternation(branches) => {
                let index = (self.next() % branches.len() as u64) as usize;
                self.walk(&branches[index]);
            }
        }
    }

    /// Picks a class member, preferring printable ASCII letters and digits.
    fn pick_class_member(&mut self, class: &Class) -> Option<char> {
        let ranges: Vec<(u32, u32)> = match class {
            Class::Unicode(unicode) => unicode
                .ranges()
                .iter()
                .map(|range| (range.start() as u32, range.end() as u32))
                .collect(),
            Class::Bytes(bytes) => bytes
                .ranges()
                .iter()
                .map(|range| (u32::from(range.start()), u32::from(range.end())))
                .collect(),
        };
        let preferred: [(u32, u32); 3] = [
            ('a' as u32, 'z' as u32),
            ('A' as u32, 'Z' as u32),
            ('0' as u32, '9' as u32),
        ];
        let mut candidates: Vec<(u32, u32)> = Vec::new();
        for (start, end) in &ranges {
            for (low, high) in preferred {
                let (from, to) = ((*start).max(low), (*end).min(high));
                if from <= to {
                    candidates.push((from, to));
                }
            }
        }
        if candidates.is_empty() {
            // Fall back to visible ASCII, then to anything in the class.
            candidates = ranges
                .iter()
                .filter_map(|(start, end)| {
                    let (from, to) = ((*start).max(0x21), (*end).min(0x7e));
                    (from <= to).then_some((from, to))
                })
                .collect();
        }
        if candidates.is_empty() {
            candidates = ranges;
        }
        let (from, to) =
            *candidates.get((self.next() % candidates.len().max(1) as u64) as usize)?;
        let offset = (self.next() % u64::from(to - from + 1)) as u32;
        char::from_u32(from + offset).or_else(|| char::from_u32(from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_matches(pattern: &str) {
        let compiled = compile_pattern(pattern).unwrap();
        let (hir, checker) = (compiled.hir, compiled.regex);
        for seed in 0..20 {
            let text = generate_matching(&hir, seed);
            assert!(checker.is_match(&text), "{pattern}: {text:?}");
            assert!(!text.contains('\n'), "{pattern}: {text:?}");
        }
    }

    #[test]
    fn common_patterns_generate() {
        for pattern in [
            "^[a-z]{3}-\\d{4}$",
            "^(foo|bar)+$",
            ".*",
            "^\\w+@\\w+\\.com$",
            "[^0-9]{2,}",
        ] {
            assert_matches(pattern);
        }
    }

    #[test]
    fn literal_pattern_is_exact() {
        let compiled = compile_pattern("^abc$").unwrap();
        assert_eq!(generate_matching(&compiled.hir, 3), "abc");
    }

    #[test]
    fn lookaround_is_unsupported() {
        let error = compile_pattern("^(?=a)a$").err().unwrap();
        assert!(error.contains("look-around"), "{error}");
        let error = compile_pattern("^(a)\\1$").err().unwrap();
        assert!(error.contains("back-reference"), "{error}");
    }

    #[test]
    fn ecma_escapes_translated() {
        assert_eq!(translate_ecma("^\\u00e9\\/x$").unwrap(), "^\\x{00e9}/x$");
        let compiled = compile_pattern("^[0-9]+\\.[0-9]+\\.[0-9]+(\\.b[0-9]+)?$").unwrap();
        assert!(compiled.regex.is_match("1.2.3"));
        assert!(compiled.regex.is_match("1.2.3.b4"));
        assert!(!compiled.regex.is_match("1.2"));
    }
}
