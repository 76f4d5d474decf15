//! The normalised schema model: every JSON Schema node of a document lowered once into an arena,
//! with `$ref`s turned into arena ids so that cyclic schemas need no recursion to build.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::document::{diagnostic, join_pointer, kind_name, local_pointer, SpecVersion};
use crate::{Diagnostic, Severity};

/// An index into a [`SchemaArena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchemaId(pub u32);

/// The JSON types a schema allows, as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeSet(u8);

impl TypeSet {
    pub const NULL: u8 = 1;
    pub const BOOLEAN: u8 = 2;
    pub const INTEGER: u8 = 4;
    pub const NUMBER: u8 = 8;
    pub const STRING: u8 = 16;
    pub const ARRAY: u8 = 32;
    pub const OBJECT: u8 = 64;

    pub fn contains(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn insert(&mut self, bit: u8) {
        self.0 |= bit;
    }

    /// Returns the types both sets allow, where `integer` is a subset of `number`.
    pub fn intersect(self, other: TypeSet) -> TypeSet {
        let widen = |set: TypeSet| {
            if set.contains(Self::NUMBER) {
                TypeSet(set.0 | Self::INTEGER)
            } else {
                set
            }
        };
        let mut common = TypeSet(widen(self).0 & widen(other).0);
        // `number` survives only when both allow it; `integer` alone stays `integer`.
        if !(self.contains(Self::NUMBER) && other.contains(Self::NUMBER)) {
            common.0 &= !Self::NUMBER;
        }
        common
    }

    pub fn union(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 | other.0)
    }

    /// Returns the JSON Schema type names in the set.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::NULL, "null"),
            (Self::BOOLEAN, "boolean"),
            (Self::INTEGER, "integer"),
            (Self::NUMBER, "number"),
            (Self::STRING, "string"),
            (Self::ARRAY, "array"),
            (Self::OBJECT, "object"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.contains(*bit))
        .map(|(_, name)| name)
        .collect()
    }

    fn bit_for(name: &str) -> Option<u8> {
        Some(match name {
            "null" => Self::NULL,
            "boolean" => Self::BOOLEAN,
            "integer" => Self::INTEGER,
            "number" => Self::NUMBER,
            "string" => Self::STRING,
            "array" => Self::ARRAY,
            "object" => Self::OBJECT,
            _ => return None,
        })
    }
}

/// The discriminator of a `oneOf`/`anyOf` or base schema.
#[derive(Debug, Clone, Default)]
pub struct Discriminator {
    pub property_name: String,
    /// Mapping keys with the schema each selects, in document order.
    pub mapping: Vec<(String, SchemaId)>,
}

/// One lowered schema node. A `false` schema has `never` set, and `true` or `{}` has nothing set.
#[derive(Debug, Clone, Default)]
pub struct SchemaNode {
    /// The `$ref` target when this node is a reference. All other fields are then unused,
    /// because OpenAPI 3.0 ignores siblings of `$ref` and for 3.1 the siblings move to `all_of`.
    pub reference: Option<SchemaId>,
    /// The pointer of a schema that is a reference target, such as `/components/schemas/Pet`.
    pub origin: Option<Box<str>>,
    pub never: bool,
    pub types: TypeSet,
    pub nullable: bool,
    pub format: Option<Box<str>>,
    pub enum_values: Option<Vec<Value>>,
    pub const_value: Option<Value>,
    pub example: Option<Value>,
    pub default: Option<Value>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    /// The parsed `pattern`, when `regex-syntax` supports it.
    pub pattern: Option<std::sync::Arc<regex_syntax::hir::Hir>>,
    /// The compiled `pattern` that validation matches.
    pub pattern_regex: Option<regex::Regex>,
    /// The `pattern` text as the document wrote it (ECMA-262 syntax).
    pub pattern_source: Option<Box<str>>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: bool,
    pub exclusive_maximum: bool,
    pub multiple_of: Option<f64>,
    pub items: Option<SchemaId>,
    pub prefix_items: Vec<SchemaId>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub unique_items: bool,
    pub properties: Vec<(Box<str>, SchemaId)>,
    pub required: Vec<Box<str>>,
    /// `None` when absent, otherwise the schema for extra properties (`false` lowers to `never`).
    pub additional_properties: Option<SchemaId>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub not: Option<SchemaId>,
    pub all_of: Vec<SchemaId>,
    pub one_of: Vec<SchemaId>,
    pub any_of: Vec<SchemaId>,
    pub discriminator: Option<Discriminator>,
    pub read_only: bool,
    pub write_only: bool,
    /// The `xml.name` of the schema.
    pub xml_name: Option<Box<str>>,
}

/// All schemas of one document.
#[derive(Debug, Default)]
pub struct SchemaArena {
    nodes: Vec<SchemaNode>,
}

impl SchemaArena {
    /// Replaces every node that has `allOf` parts by its merge with them, so that generation
    /// reads each node as is. Returns the nodes whose parts contradict each other (such as
    /// `type: string` and `type: integer`), which now accept no value.
    pub fn flatten_all_of(&mut self) -> Vec<SchemaId> {
        let mut contradictions = Vec::new();
        for index in 0..self.nodes.len() {
            if self.nodes[index].all_of.is_empty() {
                continue;
            }
            let merged = merge(self, SchemaId(index as u32), 0).into_owned();
            if merged.never && !self.nodes[index].never {
                contradictions.push(SchemaId(index as u32));
            }
            self.nodes[index] = merged;
        }
        contradictions
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Makes a schema accept no value.
    pub fn mark_never(&mut self, id: SchemaId) {
        self.nodes[id.0 as usize].never = true;
    }

    pub fn get(&self, id: SchemaId) -> &SchemaNode {
        &self.nodes[id.0 as usize]
    }

    /// Returns the XML root element name of a schema: its `xml.name`, else its component name,
    /// else `root`.
    pub fn root_name(&self, id: SchemaId) -> String {
        let node = self.get(self.resolve(id));
        if let Some(name) = &node.xml_name {
            return name.to_string();
        }
        let component = node
            .origin
            .as_deref()
            .and_then(|origin| origin.strip_prefix("/components/schemas/"));
        match component {
            Some(name) if !name.contains('/') => name.replace("~1", "/").replace("~0", "~"),
            _ => "root".to_owned(),
        }
    }

    /// Follows reference nodes to the first node that is not a reference. Stops on a cycle of
    /// pure references and returns the last node seen.
    pub fn resolve(&self, mut id: SchemaId) -> SchemaId {
        for _ in 0..64 {
            match self.get(id).reference {
                Some(next) => id = next,
                None => return id,
            }
        }
        id
    }
}

/// Lowers schemas from a document into an arena, sharing each reference target.
pub struct SchemaLowerer<'a> {
    root: &'a Value,
    version: SpecVersion,
    arena: SchemaArena,
    by_pointer: HashMap<String, SchemaId>,
    /// Reference targets with an allocated id that are not lowered yet. Lowering them from this
    /// queue, not recursively, keeps the stack flat for long chains of references.
    queue: Vec<(SchemaId, String)>,
    /// Nodes with two or more `oneOf` branches, with their pointers, for the overlap check.
    pub one_of_nodes: Vec<(SchemaId, String)>,
    pub warnings: Vec<Diagnostic>,
}

impl<'a> SchemaLowerer<'a> {
    pub fn new(root: &'a Value, version: SpecVersion) -> Self {
        Self {
            root,
            version,
            arena: SchemaArena::default(),
            by_pointer: HashMap::new(),
            queue: Vec::new(),
            one_of_nodes: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Lowers the queued reference targets and returns the arena, the warnings found and the
    /// `oneOf` nodes with their pointers.
    pub fn finish(mut self) -> (SchemaArena, Vec<Diagnostic>, Vec<(SchemaId, String)>) {
        while let Some((id, pointer)) = self.queue.pop() {
            self.lower_target(id, &pointer);
        }
        (self.arena, self.warnings, self.one_of_nodes)
    }

    fn note_one_of(&mut self, id: SchemaId, node: &SchemaNode, pointer: &str) {
        if node.one_of.len() >= 2 {
            self.one_of_nodes.push((id, pointer.to_owned()));
        }
    }

    fn allocate(&mut self) -> SchemaId {
        let id = SchemaId(self.arena.nodes.len() as u32);
        self.arena.nodes.push(SchemaNode::default());
        id
    }

    /// Lowers the schema stored at `pointer` in the document, once per pointer.
    /// The node is filled in by [`SchemaLowerer::finish`], so the id is valid only in the
    /// finished arena.
    pub fn lower_at(&mut self, pointer: &str) -> SchemaId {
        if let Some(id) = self.by_pointer.get(pointer) {
            return *id;
        }
        let id = self.allocate();
        // Registered before lowering so that a cycle back to this pointer ends here.
        self.by_pointer.insert(pointer.to_owned(), id);
        self.queue.push((id, pointer.to_owned()));
        id
    }

    fn lower_target(&mut self, id: SchemaId, pointer: &str) {
        let root = self.root;
        match root.pointer(pointer) {
            Some(value) => {
                let mut node = match self.plain_reference(value, pointer) {
                    Some(reference) => {
                        let target = local_pointer(reference).map(|target| self.lower_at(&target));
                        SchemaNode {
                            reference: target,
                            ..SchemaNode::default()
                        }
                    }
                    None => self.lower_value(value, pointer),
                };
                node.origin = Some(pointer.into());
                self.note_one_of(id, &node, pointer);
                self.arena.nodes[id.0 as usize] = node;
            }
            None => {
                let message = format!(
                    "schema reference target {pointer:?} is missing; an empty schema is used"
                );
                self.warnings
                    .push(diagnostic(Severity::Warning, pointer, message));
            }
        }
    }

    /// Lowers an inline schema found at `pointer`.
    pub fn lower_inline(&mut self, value: &Value, pointer: &str) -> SchemaId {
        if let Some(reference) = self.plain_reference(value, pointer) {
            return self.lower_reference(reference, pointer);
        }
        let id = self.allocate();
        let node = self.lower_value(value, pointer);
        self.note_one_of(id, &node, pointer);
        self.arena.nodes[id.0 as usize] = node;
        id
    }

    /// Returns the `$ref` of a node that lowers to a pure reference: one without sibling
    /// keywords, or any reference in OpenAPI 3.0 and Swagger 2.0, which ignore the siblings.
    fn plain_reference<'v>(&mut self, value: &'v Value, pointer: &str) -> Option<&'v str> {
        let object = value.as_object()?;
        let reference = object.get("$ref")?.as_str()?;
        let has_siblings = object.keys().any(|key| {
            !key.starts_with("x-") && !matches!(key.as_str(), "$ref" | "description" | "summary")
        });
        if !has_siblings {
            return Some(reference);
        }
        if self.version == SpecVersion::OpenApi31 {
            return None;
        }
        self.warnings.push(diagnostic(
            Severity::Warning,
            pointer,
            "`$ref` has sibling keywords; OpenAPI 3.0 ignores them, so only the reference is used",
        ));
        Some(reference)
    }

    fn lower_reference(&mut self, reference: &str, pointer: &str) -> SchemaId {
        match local_pointer(reference) {
            Some(target) => {
                let target_id = self.lower_at(&target);
                let id = self.allocate();
                self.arena.nodes[id.0 as usize].reference = Some(target_id);
                id
            }
            None => {
                // The document loader already warned about the external reference.
                let _ = pointer;
                self.allocate()
            }
        }
    }

    fn lower_value(&mut self, value: &Value, pointer: &str) -> SchemaNode {
        match value {
            Value::Bool(true) => SchemaNode::default(),
            Value::Bool(false) => SchemaNode {
                never: true,
                ..SchemaNode::default()
            },
            Value::Object(object) => self.lower_object(object, pointer),
            other => {
                let message = format!(
                    "a schema must be an object or a boolean, found {}; an empty schema is used",
                    kind_name(other)
                );
                self.warnings
                    .push(diagnostic(Severity::Warning, pointer, message));
                SchemaNode::default()
            }
        }
    }

    fn lower_object(&mut self, object: &Map<String, Value>, pointer: &str) -> SchemaNode {
        let mut node = SchemaNode::default();

        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            // Only reached for OpenAPI 3.1 (and reference targets): siblings apply together with
            // the referenced schema.
            let target = self.lower_reference(reference, &join_pointer(pointer, "$ref"));
            node.all_of.push(target);
        }

        match object.get("type") {
            Some(Value::String(name)) => self.add_type(&mut node, name, pointer),
            Some(Value::Array(names)) => {
                if self.version != SpecVersion::OpenApi31 {
                    self.warn(
                        pointer,
                        "type",
                        "a list of types is OpenAPI 3.1 syntax; this node is read as OpenAPI 3.1",
                    );
                }
                for name in names {
                    match name.as_str() {
                        Some(name) => self.add_type(&mut node, name, pointer),
                        None => self.warn(
                            pointer,
                            "type",
                            format!("`type` list entry {name} is not a string and is ignored"),
                        ),
                    }
                }
            }
            Some(other) => self.warn(
                pointer,
                "type",
                format!("`type` {other} must be a string or a list of strings and is ignored"),
            ),
            None => {}
        }
        node.nullable = object
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if self.version == SpecVersion::OpenApi31 && object.contains_key("nullable") {
            self.warn(
                pointer,
                "nullable",
                "`nullable` is not part of OpenAPI 3.1 and is ignored; add \"null\" to `type` instead",
            );
            node.nullable = false;
        }
        node.format = object.get("format").and_then(Value::as_str).map(Into::into);
        node.enum_values = match object.get("enum") {
            Some(Value::Array(values)) => Some(values.clone()),
            Some(other) => {
                self.warn(
                    pointer,
                    "enum",
                    format!(
                        "`enum` must be an array, found {}; it is ignored",
                        kind_name(other)
                    ),
                );
                None
            }
            None => None,
        };
        node.const_value = object.get("const").cloned();
        node.example = match object.get("example") {
            Some(example) => Some(example.clone()),
            None => match object.get("examples") {
                Some(Value::Array(examples)) => examples.first().cloned(),
                _ => None,
            },
        };
        node.default = object.get("default").cloned();
        node.min_length = object.get("minLength").and_then(Value::as_u64);
        node.max_length = object.get("maxLength").and_then(Value::as_u64);
        if let Some(pattern) = object.get("pattern").and_then(Value::as_str) {
            node.pattern_source = Some(pattern.into());
            match crate::pattern::compile_pattern(pattern) {
                Ok(compiled) => {
                    node.pattern = Some(compiled.hir);
                    node.pattern_regex = Some(compiled.regex);
                }
                Err(reason) => self.warn(
                    pointer,
                    "pattern",
                    format!("pattern {pattern:?} is not checked or generated because {reason}"),
                ),
            }
        }
        node.minimum = object.get("minimum").and_then(Value::as_f64);
        node.maximum = object.get("maximum").and_then(Value::as_f64);
        node.exclusive_minimum =
            self.lower_exclusive(object, pointer, "exclusiveMinimum", &mut node.minimum);
        node.exclusive_maximum =
            self.lower_exclusive(object, pointer, "exclusiveMaximum", &mut node.maximum);
        node.multiple_of = object
            .get("multipleOf")
            .and_then(Value::as_f64)
            .filter(|step| *step > 0.0);

        match object.get("items") {
            Some(Value::Array(tuple)) => {
                for (index, item) in tuple.iter().enumerate() {
                    let item_pointer = format!("{pointer}/items/{index}");
                    let id = self.lower_inline(item, &item_pointer);
                    node.prefix_items.push(id);
                }
            }
            Some(items) => {
                node.items = Some(self.lower_inline(items, &join_pointer(pointer, "items")))
            }
            None => {}
        }
        if let Some(Value::Array(prefix)) = object.get("prefixItems") {
            for (index, item) in prefix.iter().enumerate() {
                let id = self.lower_inline(item, &format!("{pointer}/prefixItems/{index}"));
                node.prefix_items.push(id);
            }
        }
        node.min_items = object.get("minItems").and_then(Value::as_u64);
        node.max_items = object.get("maxItems").and_then(Value::as_u64);
        node.unique_items = object
            .get("uniqueItems")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        match object.get("properties") {
            Some(Value::Object(properties)) => {
                let properties_pointer = join_pointer(pointer, "properties");
                for (name, schema) in properties {
                    let id = self.lower_inline(schema, &join_pointer(&properties_pointer, name));
                    node.properties.push((name.as_str().into(), id));
                }
            }
            Some(other) => self.warn(
                pointer,
                "properties",
                format!(
                    "`properties` must be an object, found {}; it is ignored",
                    kind_name(other)
                ),
            ),
            None => {}
        }
        match object.get("required") {
            Some(Value::Array(names)) => {
                node.required = names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(Into::into)
                    .collect()
            }
            Some(Value::Bool(_)) => self.warn(
                pointer,
                "required",
                "`required` must be a list of property names; a boolean is ignored",
            ),
            Some(other) => self.warn(
                pointer,
                "required",
                format!(
                    "`required` must be an array, found {}; it is ignored",
                    kind_name(other)
                ),
            ),
            None => {}
        }
        if let Some(additional) = object.get("additionalProperties") {
            node.additional_properties =
                Some(self.lower_inline(additional, &join_pointer(pointer, "additionalProperties")));
        }
        node.min_properties = object.get("minProperties").and_then(Value::as_u64);
        node.max_properties = object.get("maxProperties").and_then(Value::as_u64);
        if let Some(negated) = object.get("not") {
            node.not = Some(self.lower_inline(negated, &join_pointer(pointer, "not")));
        }

        node.all_of
            .extend(self.lower_list(object, pointer, "allOf"));
        node.one_of = self.lower_list(object, pointer, "oneOf");
        node.any_of = self.lower_list(object, pointer, "anyOf");
        match object.get("discriminator") {
            Some(Value::Object(discriminator)) => {
                node.discriminator = self.lower_discriminator(discriminator, pointer);
            }
            // Swagger 2.0 names only the property, and its values are schema names.
            Some(Value::String(property_name)) => {
                node.discriminator = Some(Discriminator {
                    property_name: property_name.clone(),
                    mapping: Vec::new(),
                });
            }
            _ => {}
        }
        node.read_only = object
            .get("readOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        node.write_only = object
            .get("writeOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        node.xml_name = object
            .get("xml")
            .and_then(|xml| xml.get("name"))
            .and_then(Value::as_str)
            .map(Into::into);
        self.check_satisfiable(&mut node, pointer);
        node
    }

    /// Marks a node that no value satisfies as `never`, with a warning, so that no invalid
    /// body is generated from it. Only inline subschemas are looked at, because reference
    /// targets may not be lowered yet.
    fn check_satisfiable(&mut self, node: &mut SchemaNode, pointer: &str) {
        let false_required = node.required.iter().find(|name| {
            node.properties
                .iter()
                .any(|(property, schema)| property == *name && self.arena.nodes[schema.0 as usize].never)
        });
        if let Some(name) = false_required {
            let message = format!("the required property `{name}` has the schema `false`, so no value satisfies this schema; no body is generated from it");
            self.warnings.push(diagnostic(Severity::Warning, pointer, message));
            node.never = true;
            return;
        }
        let distinct_items = node.items.and_then(|items| {
            let items = &self.arena.nodes[items.0 as usize];
            items.enum_values.as_ref().map(Vec::len)
        });
        if let (true, Some(distinct), Some(minimum)) = (node.unique_items, distinct_items, node.min_items) {
            if (distinct as u64) < minimum {
                let message = format!("`uniqueItems` with {distinct} enum values cannot reach `minItems: {minimum}`, so no value satisfies this schema; no body is generated from it");
                self.warnings.push(diagnostic(Severity::Warning, pointer, message));
                node.never = true;
            }
        }
    }

    fn add_type(&mut self, node: &mut SchemaNode, name: &str, pointer: &str) {
        match TypeSet::bit_for(name) {
            Some(bit) => node.types.insert(bit),
            None => self.warn(
                pointer,
                "type",
                format!("unknown `type` {name:?} is ignored"),
            ),
        }
    }

    /// Reads `exclusiveMinimum`/`exclusiveMaximum` in either form: the OpenAPI 3.0 boolean that
    /// modifies `minimum`, or the 3.1 number that is the bound itself. The other version's form
    /// is accepted with a warning.
    fn lower_exclusive(
        &mut self,
        object: &Map<String, Value>,
        pointer: &str,
        key: &str,
        bound: &mut Option<f64>,
    ) -> bool {
        match object.get(key) {
            Some(Value::Bool(flag)) => {
                if self.version == SpecVersion::OpenApi31 {
                    self.warn(pointer, key, format!("`{key}: {flag}` is the OpenAPI 3.0 form; OpenAPI 3.1 expects a number, but the boolean is honoured"));
                }
                *flag
            }
            Some(Value::Number(number)) => {
                if self.version != SpecVersion::OpenApi31 {
                    self.warn(pointer, key, format!("`{key}: {number}` is the OpenAPI 3.1 form; OpenAPI 3.0 expects a boolean, but the number is used as an exclusive bound"));
                }
                *bound = number.as_f64();
                true
            }
            Some(other) => {
                self.warn(
                    pointer,
                    key,
                    format!(
                        "`{key}` must be a boolean or a number, found {}; it is ignored",
                        kind_name(other)
                    ),
                );
                false
            }
            None => false,
        }
    }

    fn lower_list(
        &mut self,
        object: &Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Vec<SchemaId> {
        match object.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| self.lower_inline(item, &format!("{pointer}/{key}/{index}")))
                .collect(),
            Some(other) => {
                self.warn(
                    pointer,
                    key,
                    format!(
                        "`{key}` must be an array of schemas, found {}; it is ignored",
                        kind_name(other)
                    ),
                );
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn lower_discriminator(
        &mut self,
        object: &Map<String, Value>,
        pointer: &str,
    ) -> Option<Discriminator> {
        let property_name = object
            .get("propertyName")
            .and_then(Value::as_str)?
            .to_owned();
        let mut mapping = Vec::new();
        if let Some(Value::Object(entries)) = object.get("mapping") {
            for (key, target) in entries {
                let Some(target) = target.as_str() else {
                    continue;
                };
                // A mapping value is a reference or a bare schema name.
                let target_pointer = if target.starts_with('#') {
                    local_pointer(target)
                } else if !target.contains('/') && !target.contains('.') {
                    Some(format!("/components/schemas/{target}"))
                } else {
                    None
                };
                match target_pointer {
                    Some(target_pointer) if self.root.pointer(&target_pointer).is_some() => {
                        let id = self.lower_at(&target_pointer);
                        mapping.push((key.clone(), id));
                    }
                    _ => self.warn(pointer, "discriminator", format!("discriminator mapping {key:?} points to {target:?}, which does not resolve; the entry is ignored")),
                }
            }
        }
        Some(Discriminator {
            property_name,
            mapping,
        })
    }

    fn warn(&mut self, pointer: &str, key: &str, message: impl Into<String>) {
        self.warnings.push(diagnostic(
            Severity::Warning,
            join_pointer(pointer, key),
            message,
        ));
    }
}

/// Merges a schema with its `allOf` parts (recursively, through references). The schema's own
/// keywords win over those of its parts, except that properties and `required` are combined.
pub fn merge(arena: &SchemaArena, id: SchemaId, depth: usize) -> Cow<'_, SchemaNode> {
    let node = arena.get(id);
    if node.all_of.is_empty() || depth > 16 {
        return Cow::Borrowed(node);
    }
    let mut merged = node.clone();
    merged.all_of.clear();
    for part in &node.all_of {
        let part_id = arena.resolve(*part);
        if part_id == id {
            continue;
        }
        let part = merge(arena, part_id, depth + 1);
        absorb(&mut merged, &part);
    }
    Cow::Owned(merged)
}

fn absorb(target: &mut SchemaNode, part: &SchemaNode) {
    target.never |= part.never;
    if target.types.is_empty() {
        target.types = part.types;
    } else if !part.types.is_empty() {
        let common = target.types.intersect(part.types);
        if common.is_empty() {
            // No value has two disjoint types, so the merged schema accepts nothing.
            target.never = true;
        }
        target.types = common;
    }
    target.nullable |= part.nullable;
    target.format = target.format.take().or_else(|| part.format.clone());
    target.enum_values = target
        .enum_values
        .take()
        .or_else(|| part.enum_values.clone());
    target.const_value = target
        .const_value
        .take()
        .or_else(|| part.const_value.clone());
    target.example = match (target.example.take(), &part.example) {
        (Some(Value::Object(mut own)), Some(Value::Object(inherited))) => {
            for (key, value) in inherited {
                own.entry(key.clone()).or_insert_with(|| value.clone());
            }
            Some(Value::Object(own))
        }
        (Some(own), _) => Some(own),
        (None, inherited) => inherited.clone(),
    };

    target.default = target.default.take().or_else(|| part.default.clone());
    target.min_length = max_option(target.min_length, part.min_length);
    target.max_length = min_option(target.max_length, part.max_length);
    if target.pattern_source.is_none() {
        target.pattern = part.pattern.clone();
        target.pattern_regex = part.pattern_regex.clone();
        target.pattern_source = part.pattern_source.clone();
    }
    if target.minimum.is_none() {
        target.minimum = part.minimum;
        target.exclusive_minimum = part.exclusive_minimum;
    }
    if target.maximum.is_none() {
        target.maximum = part.maximum;
        target.exclusive_maximum = part.exclusive_maximum;
    }
    target.multiple_of = target.multiple_of.or(part.multiple_of);

    target.items = target.items.or(part.items);
    if target.prefix_items.is_empty() {
        target.prefix_items = part.prefix_items.clone();
    }
    target.min_items = max_option(target.min_items, part.min_items);
    target.max_items = min_option(target.max_items, part.max_items);
    target.unique_items |= part.unique_items;

    for (name, schema) in &part.properties {
        if !target.properties.iter().any(|(known, _)| known == name) {
            target.properties.push((name.clone(), *schema));
        }
    }
    for name in &part.required {
        if !target.required.contains(name) {
            target.required.push(name.clone());
        }
    }
    target.additional_properties = target.additional_properties.or(part.additional_properties);
    target.min_properties = max_option(target.min_properties, part.min_properties);
    target.max_properties = min_option(target.max_properties, part.max_properties);
    target.not = target.not.or(part.not);

    if target.one_of.is_empty() {
        target.one_of = part.one_of.clone();
    }
    if target.any_of.is_empty() {
        target.any_of = part.any_of.clone();
    }
    if target.discriminator.is_none() {
        target.discriminator = part.discriminator.clone();
    }
    target.read_only |= part.read_only;
    target.write_only |= part.write_only;
}

fn max_option(left: Option<u64>, right: Option<u64>) -> Option<u64> {
    match (left, right) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_option(left: Option<u64>, right: Option<u64>) -> Option<u64> {
    match (left, right) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
