//! Compile-time checks of a lowered document that only warn: examples that contradict their
//! schema and `oneOf` branches that one value can satisfy together.

use serde_json::Value;

use crate::document::diagnostic;
use crate::generate::{generate, mix};
use crate::schema::{SchemaArena, SchemaId};
use crate::validate::{branch_name, check_value, check_value_within, Direction};
use crate::{Diagnostic, Severity};

/// The maximum number of warnings each check adds, so a large document's warning list stays
/// readable.
const MAX_WARNINGS_PER_CHECK: usize = 200;

/// The maximum number of `oneOf` branches compared pairwise.
const MAX_OVERLAP_BRANCHES: usize = 24;
/// The maximum number of schema checks per value in the overlap check.
const MAX_OVERLAP_STEPS: usize = 2_000;

/// A response example to check against its media type's schema.
pub struct ExampleCheck<'d> {
    pub pointer: String,
    pub schema: SchemaId,
    pub value: &'d Value,
}

/// Warns about each example that does not validate against its schema. Such examples are still
/// served as written.
pub fn example_mismatches(arena: &SchemaArena, checks: &[ExampleCheck<'_>]) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for check in checks {
        if warnings.len() >= MAX_WARNINGS_PER_CHECK {
            break;
        }
        let violations = check_value(arena, check.schema, check.value, Direction::Response);
        if let Some(first) = violations.first() {
            let location = if first.location.is_empty() {
                "the example".to_owned()
            } else {
                first.summary()
            };
            let message = if first.location.is_empty() {
                format!("{location} {}", first.message)
            } else {
                location
            };
            warnings.push(diagnostic(
                Severity::Warning,
                check.pointer.clone(),
                format!(
                    "the example contradicts its schema ({message}, keyword `{}`); it is served as written",
                    first.keyword
                ),
            ));
        }
    }
    warnings
}

/// Warns about `oneOf` nodes where a value generated from one branch also satisfies another.
/// A request with such a value fails validation, because `oneOf` requires exactly one match.
pub fn one_of_overlaps(arena: &SchemaArena, nodes: &[(SchemaId, String)]) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for (id, pointer) in nodes {
        if warnings.len() >= MAX_WARNINGS_PER_CHECK {
            break;
        }
        let node = arena.get(*id);
        let Some((first, second)) = overlapping_branches(arena, &node.one_of) else {
            continue;
        };
        let names = format!(
            "{} and {}",
            branch_name(arena, node.one_of[first], first),
            branch_name(arena, node.one_of[second], second)
        );
        let message = if node.discriminator.is_some() {
            format!("oneOf branches overlap; discriminator cannot make them exclusive ({names} accept the same value)")
        } else {
            format!("oneOf branches overlap ({names} accept the same value), so such a request matches more than one branch and fails validation")
        };
        warnings.push(diagnostic(Severity::Warning, format!("{pointer}/oneOf"), message));
    }
    warnings
}

/// Returns the first pair of branches where a generated value of one satisfies the other.
/// Checks that exceed a step budget count as no overlap, which keeps compiling deep recursive
/// `oneOf` trees fast.
// NOTE: a value generated per branch finds overlaps such as two objects without distinguishing
// required properties, but it can miss overlaps that only other values show.
fn overlapping_branches(arena: &SchemaArena, branches: &[SchemaId]) -> Option<(usize, usize)> {
    if branches.len() > MAX_OVERLAP_BRANCHES {
        return None;
    }
    let matches = |schema: SchemaId, value: &Value| {
        check_value_within(arena, schema, value, Direction::Request, MAX_OVERLAP_STEPS)
            .is_some_and(|violations| violations.is_empty())
    };
    for (index, branch) in branches.iter().enumerate() {
        let Some(sample) = generate(arena, *branch, mix(0, "oneOf overlap")) else {
            continue;
        };
        if !matches(*branch, &sample) {
            continue;
        }
        for (other_index, other) in branches.iter().enumerate() {
            if other_index != index && matches(*other, &sample) {
                return Some((index.min(other_index), index.max(other_index)));
            }
        }
    }
    None
}

/// Finds component schemas that require themselves at every level (`A` requires `b: B` and `B`
/// requires `a: A`, none nullable), which no finite value satisfies. Each is marked `never`
/// and gets a warning. Returns the warnings.
pub fn required_cycles(arena: &mut SchemaArena) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    let mut cyclic = Vec::new();
    for index in 0..arena.len() {
        let id = SchemaId(index as u32);
        let node = arena.get(id);
        if node.origin.is_none() || node.reference.is_some() || !is_strict_object(node) {
            continue;
        }
        if requires_itself(arena, id) {
            cyclic.push(id);
        }
    }
    for id in cyclic {
        let pointer = arena.get(id).origin.as_deref().unwrap_or("").to_owned();
        warnings.push(diagnostic(
            Severity::Warning,
            pointer,
            "every value must contain another value of this schema through required properties, so no finite value satisfies it; no body is generated from it",
        ));
        arena.mark_never(id);
    }
    warnings
}

fn is_strict_object(node: &crate::schema::SchemaNode) -> bool {
    use crate::schema::TypeSet;
    node.types.contains(TypeSet::OBJECT)
        && !node.types.contains(TypeSet::NULL)
        && !node.nullable
        && node.one_of.is_empty()
        && node.any_of.is_empty()
}

/// Returns whether following required, non-nullable object properties from `start` leads back
/// to `start`.
fn requires_itself(arena: &SchemaArena, start: SchemaId) -> bool {
    let mut pending = vec![start];
    let mut seen = vec![start];
    while let Some(id) = pending.pop() {
        let node = arena.get(id);
        for name in &node.required {
            let Some((_, schema)) = node.properties.iter().find(|(property, _)| property == name)
            else {
                continue;
            };
            let target = arena.resolve(*schema);
            if target == start {
                return true;
            }
            if !seen.contains(&target) && is_strict_object(arena.get(target)) {
                seen.push(target);
                pending.push(target);
            }
        }
    }
    false
}
