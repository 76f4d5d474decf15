//! Deterministic value generation from schemas. Each value's seed is derived from the request's
//! seed and the value's location, so the same request gives the same body and adding a property
//! does not change the values of the others.

use serde_json::{Map, Number, Value};

use crate::paging::{MAX_PAGE_BYTES, MAX_PAGE_LENGTH};
use crate::validate::{check_value, Direction};
use crate::schema::{merge, SchemaArena, SchemaId, SchemaNode, TypeSet};

/// Nesting depth past which optional properties are dropped.
const OPTIONAL_DEPTH: usize = 4;
/// Nesting depth past which arrays are empty and required objects are `{}`.
const MAX_DEPTH: usize = 12;
/// The maximum number of optional properties emitted for one object.
const MAX_OPTIONAL_PROPERTIES: usize = 32;
/// The number of items generated for an array, unless `minItems` requires more.
const DEFAULT_ARRAY_LENGTH: u64 = 1;
/// The maximum number of items generated for any array, even when `minItems` is larger.
const MAX_ARRAY_LENGTH: u64 = 64;
/// The longest generated string, even when `minLength` is larger.
const MAX_STRING_LENGTH: u64 = 4096;

/// Mixes a key into a seed (FNV-1a over the key, then a SplitMix64 finaliser).
pub fn mix(seed: u64, key: &str) -> u64 {
    let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix(hash)
}

fn splitmix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

fn pick<'t>(seed: u64, choices: &[&'t str]) -> &'t str {
    choices[(seed % choices.len() as u64) as usize]
}

/// Generates a response value for a schema. Returns `None` for a `false` schema.
pub fn generate(arena: &SchemaArena, schema: SchemaId, seed: u64) -> Option<Value> {
    generate_for(arena, schema, seed, Direction::Response)
}

/// Generates a value for one side of an exchange: request values leave out `readOnly`
/// properties and response values leave out `writeOnly` ones.
pub fn generate_for(
    arena: &SchemaArena,
    schema: SchemaId,
    seed: u64,
    direction: Direction,
) -> Option<Value> {
    let mut generator = Generator {
        arena,
        direction,
        stack: Vec::new(),
        page_length: None,
        page_cut: None,
    };
    generator.value(schema, seed, None, 0)
}

/// A requested page that the mock's page limits (1,000 items, about 512 KiB of JSON) cut
/// short: the items requested, as far as `maxItems` allows, and the items served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCut {
    pub requested: u64,
    pub served: u64,
}

/// Generates a response value whose collection array has `page_length` items, as far as
/// `minItems` and `maxItems` allow. The collection is the body itself when it is an array,
/// else the first array property of the body object. Also returns how the page limits cut the
/// collection short, if they did.
pub fn generate_page(
    arena: &SchemaArena,
    schema: SchemaId,
    seed: u64,
    page_length: Option<u64>,
) -> (Option<Value>, Option<PageCut>) {
    let mut generator = Generator {
        arena,
        direction: Direction::Response,
        stack: Vec::new(),
        page_length,
        page_cut: None,
    };
    let value = generator.value(schema, seed, None, 0);
    (value, generator.page_cut)
}

/// Returns the schema's own or inherited (`$ref`, `allOf`) example, if any.
pub fn schema_example(arena: &SchemaArena, schema: SchemaId) -> Option<Value> {
    let merged = merge(arena, arena.resolve(schema), 0);
    merged.example.clone()
}

struct Generator<'a> {
    arena: &'a SchemaArena,
    direction: Direction,
    /// Schemas whose objects are being generated, to stop recursion.
    stack: Vec<SchemaId>,
    /// The requested length of the collection array, until that array is generated.
    page_length: Option<u64>,
    /// Set when the page limits cut the collection array short.
    page_cut: Option<PageCut>,
}

/// The JSON type generated for a schema node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
    Null,
    Any,
}

fn kind_of(node: &SchemaNode) -> Kind {
    let types = node.types;
    if !types.is_empty() {
        for (bit, kind) in [
            (TypeSet::OBJECT, Kind::Object),
            (TypeSet::ARRAY, Kind::Array),
            (TypeSet::STRING, Kind::String),
            (TypeSet::INTEGER, Kind::Integer),
            (TypeSet::NUMBER, Kind::Number),
            (TypeSet::BOOLEAN, Kind::Boolean),
        ] {
            if types.contains(bit) {
                return kind;
            }
        }
        return Kind::Null;
    }
    // Without `type`, the keywords present tell the intended type.
    if !node.properties.is_empty() || node.additional_properties.is_some() {
        Kind::Object
    } else if node.items.is_some() || !node.prefix_items.is_empty() {
        Kind::Array
    } else if node.format.is_some()
        || node.min_length.is_some()
        || node.max_length.is_some()
        || node.pattern.is_some()
    {
        Kind::String
    } else if node.minimum.is_some() || node.maximum.is_some() || node.multiple_of.is_some() {
        Kind::Number
    } else {
        Kind::Any
    }
}

impl Generator<'_> {
    fn value(
        &mut self,
        id: SchemaId,
        seed: u64,
        name: Option<&str>,
        depth: usize,
    ) -> Option<Value> {
        // `oneOf` chains that lead back to themselves add depth without adding objects.
        if depth > MAX_DEPTH * 2 {
            return Some(Value::Null);
        }
        let resolved = self.arena.resolve(id);
        let merged = merge(self.arena, resolved, 0);
        let node: &SchemaNode = &merged;
        if node.never {
            return None;
        }
        if let Some(value) = &node.const_value {
            return Some(value.clone());
        }
        // Examples and defaults that contradict their own schema are skipped, so generated
        // values stay valid.
        for value in [&node.example, &node.default].into_iter().flatten() {
            if check_value(self.arena, resolved, value, self.direction).is_empty() {
                return Some(value.clone());
            }
        }
        if let Some(first) = node.enum_values.as_ref().and_then(|values| values.first()) {
            return Some(first.clone());
        }
        if let Some(value) = self.choice(node, resolved, seed, name, depth) {
            return Some(value);
        }

        Some(match kind_of(node) {
            Kind::Object => self.object(node, resolved, seed, depth),
            Kind::Array => self.array(node, seed, name, depth),
            Kind::String => Value::String(string_value(node, seed, name)),
            Kind::Integer => integer_value(node, seed, name),
            Kind::Number => number_value(node, seed),
            Kind::Boolean => Value::Bool(seed & 1 == 0),
            Kind::Null => Value::Null,
            Kind::Any => match name.and_then(|name| named_string(name, seed)) {
                Some(text) => Value::String(text),
                None => Value::Object(Map::new()),
            },
        })
    }

    /// Generates the first `oneOf`/`anyOf` branch, setting the discriminator property to the
    /// mapping key of that branch (or the branch's schema name without a mapping).
    fn choice(
        &mut self,
        node: &SchemaNode,
        resolved: SchemaId,
        seed: u64,
        name: Option<&str>,
        depth: usize,
    ) -> Option<Value> {
        let branches = if node.one_of.is_empty() {
            &node.any_of
        } else {
            &node.one_of
        };
        if branches.is_empty() {
            return None;
        }
        // The first branch that does not lead back to a schema being generated is used.
        let is_recursive = |branch: &SchemaId| {
            let target = self.arena.resolve(*branch);
            target == resolved || self.stack.contains(&target)
        };
        let branch = match branches.iter().find(|branch| !is_recursive(branch)) {
            Some(branch) => *branch,
            None => return Some(Value::Null),
        };
        let branch_target = self.arena.resolve(branch);
        let mut value = self.value(branch, seed, name, depth + 1)?;

        if let (Some(discriminator), Value::Object(object)) = (&node.discriminator, &mut value) {
            let key = discriminator
                .mapping
                .iter()
                .find(|(_, target)| self.arena.resolve(*target) == branch_target)
                .map(|(key, _)| key.clone())
                .or_else(|| schema_name(self.arena.get(branch_target)));
            if let Some(key) = key {
                object.insert(discriminator.property_name.clone(), Value::String(key));
            }
        }
        // Properties declared beside `oneOf` apply to every branch.
        if let Value::Object(object) = &mut value {
            if !node.properties.is_empty() {
                let Value::Object(extra) = self.object(node, resolved, seed, depth) else {
                    unreachable!()
                };
                // A branch's own properties win. Other keys, such as a name the branch only
                // lists in `required`, take the value of the declared property.
                let branch_node = merge(self.arena, branch_target, 0);
                for (key, item) in extra {
                    let declared_by_branch =
                        branch_node.properties.iter().any(|(known, _)| **known == *key);
                    if declared_by_branch {
                        object.entry(key).or_insert(item);
                    } else {
                        object.insert(key, item);
                    }
                }
            }
        }
        Some(value)
    }

    fn object(&mut self, node: &SchemaNode, resolved: SchemaId, seed: u64, depth: usize) -> Value {
        let mut object = Map::new();
        self.stack.push(resolved);
        let mut optional_count = 0;

        for (name, schema) in &node.properties {
            let required = node.required.iter().any(|known| known == name);
            let target = self.arena.resolve(*schema);
            let property = self.arena.get(*schema);
            let target_node = merge(self.arena, target, 0);
            let omitted = match self.direction {
                Direction::Response => property.write_only || target_node.write_only,
                Direction::Request => property.read_only || target_node.read_only,
            };
            if omitted || target_node.never {
                continue;
            }
            if !required {
                if depth >= OPTIONAL_DEPTH || optional_count >= MAX_OPTIONAL_PROPERTIES {
                    continue;
                }
                optional_count += 1;
            }

            let recursive = self.stack.contains(&target) || depth >= MAX_DEPTH;
            let value = if recursive {
                match kind_of(&target_node) {
                    Kind::Array => Some(Value::Array(Vec::new())),
                    _ if !required => None,
                    _ => self
                        .flat_branch(&target_node, mix(seed, name), name, depth)
                        .or_else(|| {
                            Some(minimal_value(self.arena, &target_node, MINIMAL_DEPTH, &self.stack))
                        }),
                }
            } else {
                self.value(*schema, mix(seed, name), Some(name), depth + 1)
            };
            if let Some(value) = value {
                object.insert(name.to_string(), value);
            }
        }

        if node.properties.is_empty() {
            if let Some(additional) = node.additional_properties {
                let target = self.arena.resolve(additional);
                let target_node = self.arena.get(target);
                let is_open =
                    !target_node.never && !self.stack.contains(&target) && depth < MAX_DEPTH;
                let has_constraints = !kind_of(target_node).eq(&Kind::Any)
                    || target_node.reference.is_some()
                    || !target_node.all_of.is_empty();
                if is_open && has_constraints {
                    if let Some(value) =
                        self.value(additional, mix(seed, "additionalProp1"), None, depth + 1)
                    {
                        object.insert("additionalProp1".to_owned(), value);
                    }
                }
            }
        }

        // Required names without a declared property still need a value: one from
        // `additionalProperties`, else any value.
        for name in &node.required {
            if object.contains_key(&**name)
                || node.properties.iter().any(|(known, _)| known == name)
            {
                continue;
            }
            let value = match node.additional_properties {
                Some(additional) if depth < MAX_DEPTH => {
                    self.value(additional, mix(seed, name), Some(name), depth + 1)
                }
                Some(_) => None,
                None => Some(Value::String(pick(mix(seed, name), WORDS).to_owned())),
            };
            if let Some(value) = value {
                object.insert(name.to_string(), value);
            }
        }

        if let Some(discriminator) = &node.discriminator {
            let key = discriminator
                .mapping
                .iter()
                .find(|(_, target)| self.arena.resolve(*target) == resolved)
                .map(|(key, _)| key.clone())
                .or_else(|| schema_name(self.arena.get(resolved)))
                .or_else(|| discriminator.mapping.first().map(|(key, _)| key.clone()));
            if let Some(key) = key {
                object.insert(discriminator.property_name.clone(), Value::String(key));
            }
        }

        self.stack.pop();
        Value::Object(object)
    }

    /// Generates a required property that would recurse from a `oneOf`/`anyOf` branch that
    /// is not an object, such as the string id in `anyOf: [string, Customer]`.
    fn flat_branch(
        &mut self,
        node: &SchemaNode,
        seed: u64,
        name: &str,
        depth: usize,
    ) -> Option<Value> {
        if node.nullable || node.types.contains(TypeSet::NULL) {
            return Some(Value::Null);
        }
        let branch = node.one_of.iter().chain(&node.any_of).find(|branch| {
            let target = self.arena.resolve(**branch);
            let kind = kind_of(&merge(self.arena, target, 0));
            !self.stack.contains(&target) && !matches!(kind, Kind::Object | Kind::Any)
        })?;
        self.value(*branch, seed, Some(name), depth + 1)
    }

    fn array(&mut self, node: &SchemaNode, seed: u64, name: Option<&str>, depth: usize) -> Value {
        let mut items = Vec::new();
        for (index, prefix) in node.prefix_items.iter().enumerate() {
            if let Some(value) = self.value(*prefix, mix(seed, &index.to_string()), name, depth + 1)
            {
                items.push(value);
            }
        }
        let Some(item_schema) = node.items else {
            return Value::Array(items);
        };
        let target = self.arena.resolve(item_schema);
        if self.stack.contains(&target) || depth >= MAX_DEPTH {
            return Value::Array(items);
        }

        let minimum = node.min_items.unwrap_or(0);
        // The collection array is the body or a property of the body object, so at most one
        // object is being generated around it.
        let page_length = match self.stack.len() {
            0 | 1 => self.page_length.take(),
            _ => None,
        };
        let mut count = match page_length {
            Some(length) => length.clamp(minimum.min(MAX_PAGE_LENGTH), MAX_PAGE_LENGTH),
            None => minimum.clamp(DEFAULT_ARRAY_LENGTH, MAX_ARRAY_LENGTH),
        };
        if let Some(maximum) = node.max_items {
            count = count.min(maximum);
        }
        let count = count.saturating_sub(items.len() as u64) as usize;

        let item_node = merge(self.arena, target, 0);
        if node.unique_items {
            if let Some(values) = &item_node.enum_values {
                items.extend(values.iter().take(count).cloned());
                return Value::Array(items);
            }
        }

        // A requested page stops at MAX_PAGE_BYTES of JSON, because an unbounded page of large
        // items costs tens of milliseconds of CPU per request (2.3 MB took about 25 ms in
        // release). `minItems` still wins over the budget.
        let mut page_budget = page_length.map(|_| MAX_PAGE_BYTES);
        let required = minimum.saturating_sub(items.len() as u64) as usize;

        // Unique arrays retry with other seeds; a schema with few values may yield fewer items.
        let attempts = if node.unique_items { count * 4 } else { count };
        let mut generated = 0;
        let mut over_budget = false;
        for attempt in 0..attempts {
            if generated == count {
                break;
            }
            let Some(value) = self.value(
                item_schema,
                mix(seed, &attempt.to_string()),
                name.map(singular),
                depth + 1,
            ) else {
                break;
            };
            if node.unique_items && items.contains(&value) {
                continue;
            }
            if let Some(budget) = &mut page_budget {
                let size = estimated_json_len(&value);
                if size > *budget && generated >= required {
                    over_budget = true;
                    break;
                }
                *budget = budget.saturating_sub(size);
            }
            items.push(value);
            generated += 1;
        }
        if let Some(requested) = page_length {
            let requested = node.max_items.map_or(requested, |maximum| requested.min(maximum));
            let served = items.len() as u64;
            if served < requested && (over_budget || requested > MAX_PAGE_LENGTH) {
                self.page_cut = Some(PageCut { requested, served });
            }
        }
        Value::Array(items)
    }
}

/// Returns roughly how many bytes `value` takes as compact JSON: exact for the structure and
/// for strings without escapes, and an estimate of 8 bytes for each number.
fn estimated_json_len(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(flag) => if *flag { 4 } else { 5 },
        Value::Number(_) => 8,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => 2 + items.len() + items.iter().map(estimated_json_len).sum::<usize>(),
        Value::Object(object) => {
            let entries: usize = object
                .iter()
                .map(|(key, item)| key.len() + 3 + estimated_json_len(item))
                .sum();
            2 + object.len() + entries
        }
    }
}

/// Returns the component name of a schema that is a reference target.
fn schema_name(node: &SchemaNode) -> Option<String> {
    let origin = node.origin.as_deref()?;
    let last = origin.rsplit('/').next()?;
    Some(last.replace("~1", "/").replace("~0", "~"))
}

/// Builds the smallest value of a schema's type, used for a required property that would
/// recurse forever.
/// How many levels of required properties a minimal value fills in.
const MINIMAL_DEPTH: usize = 6;

/// Returns the smallest value that still satisfies a schema's type, `const`, `enum`, string
/// length and required properties, for places where generation stops recursing. Required
/// properties that lead back to a schema in `visited` are left out, so a cycle that is required
/// at every level ends in an empty object, which no finite value can avoid.
fn minimal_value(
    arena: &SchemaArena,
    node: &SchemaNode,
    depth: usize,
    visited: &[SchemaId],
) -> Value {
    if node.nullable || node.types.contains(TypeSet::NULL) {
        return Value::Null;
    }
    if let Some(value) = &node.const_value {
        return value.clone();
    }
    if let Some(first) = node.enum_values.as_ref().and_then(|values| values.first()) {
        return first.clone();
    }
    if let Some(branch) = node.one_of.first().or(node.any_of.first()) {
        if depth > 0 && node.types.is_empty() {
            let branch = merge(arena, arena.resolve(*branch), 0);
            return minimal_value(arena, &branch, depth - 1, visited);
        }
    }
    match kind_of(node) {
        Kind::Object | Kind::Any => {
            let mut object = Map::new();
            if depth > 0 {
                for name in &node.required {
                    let target = node
                        .properties
                        .iter()
                        .find(|(known, _)| known == name)
                        .map(|(_, schema)| arena.resolve(*schema));
                    let value = match target {
                        Some(target) if visited.contains(&target) => continue,
                        Some(target) => {
                            let mut inner = visited.to_vec();
                            inner.push(target);
                            let property = merge(arena, target, 0);
                            minimal_value(arena, &property, depth - 1, &inner)
                        }
                        None => Value::Null,
                    };
                    object.insert(name.to_string(), value);
                }
            }
            Value::Object(object)
        }
        Kind::Array => Value::Array(Vec::new()),
        Kind::String => {
            let length = node.min_length.unwrap_or(0).min(MAX_STRING_LENGTH) as usize;
            Value::String("x".repeat(length))
        }
        Kind::Integer | Kind::Number => Value::from(node.minimum.map_or(0, |minimum| minimum.ceil() as i64)),
        Kind::Boolean => Value::Bool(false),
        Kind::Null => Value::Null,
    }
}

fn singular(name: &str) -> &str {
    name.strip_suffix("ies")
        .or_else(|| name.strip_suffix('s'))
        .unwrap_or(name)
}

fn normalise_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

const FIRST_NAMES: &[&str] = &[
    "Alice", "Bob", "Carol", "David", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Lee", "Brown", "Garcia", "Miller", "Davis", "Martin", "Clark", "Lopez",
];
const CITIES: &[&str] = &[
    "Lisbon",
    "Berlin",
    "Toronto",
    "Osaka",
    "Nairobi",
    "Denver",
    "Lyon",
    "Melbourne",
];
const COUNTRIES: &[&str] = &["PT", "DE", "CA", "JP", "KE", "US", "FR", "AU"];
const STREETS: &[&str] = &[
    "Main Street",
    "Oak Avenue",
    "Elm Road",
    "Harbour Lane",
    "Park Drive",
];
const COMPANIES: &[&str] = &["Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Hooli"];
const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
];
const COLORS: &[&str] = &["red", "green", "blue", "orange", "purple"];

fn uuid_text(seed: u64) -> String {
    let high = splitmix(seed);
    let low = splitmix(high);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        8 + (low >> 62),
        (low >> 48) & 0xfff,
        low & 0xffff_ffff_ffff
    )
}

fn date_parts(seed: u64) -> (u64, u64, u64) {
    (2020 + seed % 5, 1 + (seed >> 8) % 12, 1 + (seed >> 16) % 28)
}

fn date_time_text(seed: u64) -> String {
    let (year, month, day) = date_parts(seed);
    format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        (seed >> 24) % 24,
        (seed >> 32) % 60,
        (seed >> 40) % 60
    )
}

fn date_text(seed: u64) -> String {
    let (year, month, day) = date_parts(seed);
    format!("{year}-{month:02}-{day:02}")
}

/// Returns a realistic string for a well-known format, or `None` for an unknown one.
fn formatted_string(format: &str, seed: u64) -> Option<String> {
    let first = pick(seed, FIRST_NAMES).to_ascii_lowercase();
    Some(match format {
        "uuid" | "guid" => uuid_text(seed),
        "date-time" | "datetime" => date_time_text(seed),
        "date" => date_text(seed),
        "time" => format!(
            "{:02}:{:02}:{:02}",
            seed % 24,
            (seed >> 8) % 60,
            (seed >> 16) % 60
        ),
        "duration" => format!("PT{}M", 1 + seed % 59),
        "email" | "idn-email" => format!("{first}@example.com"),
        "uri" | "url" | "iri" | "uri-reference" | "iri-reference" => {
            format!("https://example.com/{}", pick(seed, WORDS))
        }
        "hostname" | "idn-hostname" => format!("{}.example.com", pick(seed, WORDS)),
        "ipv4" => format!("192.0.2.{}", 1 + seed % 254),
        "ipv6" => format!("2001:db8::{:x}", 1 + seed % 0xfffe),
        "byte" => "bW9ja2Zvcmdl".to_owned(),
        "binary" => "mockforge".to_owned(),
        "password" => "********".to_owned(),
        "phone" => format!("+1-555-{:04}", seed % 10_000),
        _ => return None,
    })
}

/// Returns a realistic string for a property name such as `email` or `city`.
fn named_string(name: &str, seed: u64) -> Option<String> {
    let key = normalise_name(name);
    let first = pick(seed, FIRST_NAMES);
    let last = pick(seed >> 8, LAST_NAMES);
    Some(match key.as_str() {
        "email" | "emailaddress" | "mail" => format!(
            "{}.{}@example.com",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase()
        ),
        "firstname" | "givenname" => first.to_owned(),
        "lastname" | "surname" | "familyname" => last.to_owned(),
        "name" | "fullname" | "displayname" | "author" => format!("{first} {last}"),
        "username" | "login" | "handle" | "nickname" => {
            format!("{}{}", first.to_ascii_lowercase(), seed % 100)
        }
        "phone" | "phonenumber" | "mobile" | "telephone" => format!("+1-555-{:04}", seed % 10_000),
        "city" | "town" => pick(seed, CITIES).to_owned(),
        "country" | "countrycode" => pick(seed, COUNTRIES).to_owned(),
        "street" | "address" | "addressline1" | "streetaddress" => {
            format!("{} {}", 1 + seed % 200, pick(seed >> 4, STREETS))
        }
        "zip" | "zipcode" | "postcode" | "postalcode" => format!("{:05}", seed % 100_000),
        "company" | "organization" | "organisation" => pick(seed, COMPANIES).to_owned(),
        "title" | "subject" | "summary" => format!(
            "{} {}",
            capitalise(pick(seed, WORDS)),
            pick(seed >> 8, WORDS)
        ),
        "description" | "body" | "comment" | "message" | "note" => {
            format!("A sample {} {}.", pick(seed, WORDS), pick(seed >> 8, WORDS))
        }
        "color" | "colour" => pick(seed, COLORS).to_owned(),
        "currency" => "USD".to_owned(),
        "language" | "lang" => "en".to_owned(),
        "locale" => "en-US".to_owned(),
        "timezone" | "tz" => "UTC".to_owned(),
        "id" | "uuid" | "guid" => uuid_text(seed),
        "slug" => format!("{}-{}", pick(seed, WORDS), pick(seed >> 8, WORDS)),
        "status" | "state" => "active".to_owned(),
        "version" => format!("{}.{}.{}", seed % 5, (seed >> 8) % 10, (seed >> 16) % 10),
        "ip" | "ipaddress" => format!("192.0.2.{}", 1 + seed % 254),
        "hostname" | "host" | "domain" => format!("{}.example.com", pick(seed, WORDS)),
        "sha" | "hash" | "etag" | "checksum" | "digest" => {
            format!("{:016x}{:016x}", splitmix(seed), splitmix(seed ^ 1))
        }
        "token" => format!("tok_{:016x}", splitmix(seed)),
        _ if key.ends_with("email") => format!("{}@example.com", first.to_ascii_lowercase()),
        _ if key.ends_with("url")
            || key.ends_with("uri")
            || key == "href"
            || key == "link"
            || key == "website" =>
        {
            format!("https://example.com/{}", pick(seed, WORDS))
        }
        _ if key.ends_with("at")
            && key.len() > 2
            && (key.ends_with("edat") || key.ends_with("dat")) =>
        {
            date_time_text(seed)
        }
        _ if key.ends_with("date") => date_text(seed),
        _ if key.ends_with("time") || key.ends_with("timestamp") => date_time_text(seed),
        _ if key.ends_with("id") && key.len() > 2 => uuid_text(seed),
        _ if key.ends_with("name") => format!(
            "{} {}",
            capitalise(pick(seed, WORDS)),
            pick(seed >> 8, WORDS)
        ),
        _ => return None,
    })
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn string_value(node: &SchemaNode, seed: u64, name: Option<&str>) -> String {
    if let Some(pattern) = &node.pattern {
        // A pattern is a constraint, so it wins over format and name hints; length bounds are
        // honoured by retrying other seeds a few times.
        let mut text = crate::pattern::generate_matching(pattern, seed);
        for attempt in 1..8 {
            if length_fits(node, &text) {
                break;
            }
            text = crate::pattern::generate_matching(pattern, mix(seed, &attempt.to_string()));
        }
        return text;
    }
    let mut text = node
        .format
        .as_deref()
        .and_then(|format| formatted_string(format, seed))
        .or_else(|| name.and_then(|name| named_string(name, seed)))
        .unwrap_or_else(|| pick(seed, WORDS).to_owned());

    let minimum = node.min_length.unwrap_or(0).min(MAX_STRING_LENGTH) as usize;
    let length = text.chars().count();
    if length < minimum {
        text.extend(std::iter::repeat_n('x', minimum - length));
    }
    if let Some(maximum) = node.max_length {
        let maximum = maximum as usize;
        if text.chars().count() > maximum {
            text = text.chars().take(maximum).collect();
        }
    }
    text
}

fn length_fits(node: &SchemaNode, text: &str) -> bool {
    let length = text.chars().count() as u64;
    node.min_length.is_none_or(|minimum| length >= minimum)
        && node.max_length.is_none_or(|maximum| length <= maximum)
}

/// Returns the bounds of a numeric schema with exclusive bounds moved inwards by `step`.
fn bounds(node: &SchemaNode, step: f64) -> (Option<f64>, Option<f64>) {
    let minimum = node.minimum.map(|value| {
        if node.exclusive_minimum {
            value + step
        } else {
            value
        }
    });
    let maximum = node.maximum.map(|value| {
        if node.exclusive_maximum {
            value - step
        } else {
            value
        }
    });
    (minimum, maximum)
}

fn integer_value(node: &SchemaNode, seed: u64, name: Option<&str>) -> Value {
    let step = node
        .multiple_of
        .filter(|step| step.fract() == 0.0)
        .unwrap_or(1.0);
    let (minimum, maximum) = bounds(node, 1.0);
    let minimum = minimum.map(f64::ceil);
    let maximum = maximum.map(f64::floor);

    let preferred = match name.map(normalise_name).as_deref() {
        Some("age") => 18.0 + (seed % 60) as f64,
        Some("year") => 2020.0 + (seed % 5) as f64,
        _ => 1.0 + (seed % 1000) as f64,
    };
    let mut value = match (minimum, maximum) {
        (Some(low), _) => low,
        (None, Some(high)) => preferred.min(high),
        (None, None) => preferred,
    };
    if step > 1.0 {
        value = (value / step).ceil() * step;
        if maximum.is_some_and(|high| value > high) {
            value -= step;
        }
    }
    if value.abs() < 9.0e15 {
        Value::from(value as i64)
    } else {
        Number::from_f64(value).map_or(Value::from(0), Value::Number)
    }
}

fn number_value(node: &SchemaNode, seed: u64) -> Value {
    let (minimum, maximum) = bounds(node, 0.01);
    let preferred = 1.0 + (seed % 10_000) as f64 / 100.0;
    let mut value = match (minimum, maximum) {
        (Some(low), _) => low,
        (None, Some(high)) => preferred.min(high),
        (None, None) => preferred,
    };
    if let Some(step) = node.multiple_of {
        value = (value / step).ceil() * step;
    }
    Number::from_f64(value).map_or(Value::from(0), Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_four_layout() {
        let text = uuid_text(42);
        assert_eq!(text.len(), 36, "{text}");
        assert_eq!(&text[14..15], "4", "{text}");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
    }

    #[test]
    fn mix_depends_on_key() {
        assert_ne!(mix(1, "a"), mix(1, "b"));
        assert_eq!(mix(7, "name"), mix(7, "name"));
    }

    #[test]
    fn created_at_is_date_time() {
        let text = named_string("created_at", 5).unwrap();
        assert!(text.ends_with('Z'), "{text}");
        assert!(text.contains('T'), "{text}");
    }
}
