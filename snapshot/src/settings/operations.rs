//! Operation filters: the `operations` list of `config_json.chaos` and `config_json.proxy`,
//! which limits a setting to the operations with these `operationId`s.

use http::Method;
use mockforge_engine::Mock;
use serde_json::Value;

/// A list of operation ids, checked against the compiled document by
/// [`OperationFilter::resolve`] before the deployment is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationFilter {
    /// The ids in configuration order.
    ids: Vec<String>,
    /// Indexes of the listed operations in the compiled mock, sorted. Empty until resolved.
    indexes: Vec<usize>,
}

impl OperationFilter {
    /// Parses an `operations` value: a non-empty array of `operationId` strings. Errors start
    /// with the JSON pointer below the setting, such as `/operations/1`.
    pub fn parse(value: &Value) -> Result<OperationFilter, String> {
        let Value::Array(items) = value else {
            return Err(format!(
                "/operations: must be an array of operationId strings, not {value}"
            ));
        };
        if items.is_empty() {
            return Err("/operations: must list at least one operationId".to_owned());
        }
        let mut ids = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item.as_str().filter(|id| !id.is_empty()) {
                Some(id) => ids.push(id.to_owned()),
                None => {
                    return Err(format!(
                        "/operations/{index}: must be a non-empty operationId string, not {item}"
                    ))
                }
            }
        }
        Ok(OperationFilter {
            ids,
            indexes: Vec::new(),
        })
    }

    /// Returns the ids as configured.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Finds each listed id among the document's operations. An unknown id fails with its
    /// pointer below the setting and the ids the document declares.
    pub fn resolve(&mut self, mock: &Mock) -> Result<(), String> {
        let mut indexes = Vec::with_capacity(self.ids.len());
        for (position, id) in self.ids.iter().enumerate() {
            let found: Vec<usize> = (0..mock.operation_count())
                .filter(|&operation| mock.operation_id(operation) == Some(id.as_str()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "/operations/{position}: the document has no operation with operationId {id:?}; {}",
                    declared_ids(mock)
                ));
            }
            indexes.extend(found);
        }
        indexes.sort_unstable();
        indexes.dedup();
        self.indexes = indexes;
        Ok(())
    }

    /// Returns true when the request matches one of the listed operations. A request that no
    /// operation matches is never listed.
    pub fn matches(&self, mock: &Mock, method: &Method, path: &str) -> bool {
        mock.find_operation(method, path)
            .is_some_and(|operation| self.indexes.binary_search(&operation).is_ok())
    }
}

/// Describes the operation ids a document declares, for error messages.
fn declared_ids(mock: &Mock) -> String {
    let ids: Vec<String> = (0..mock.operation_count())
        .filter_map(|operation| mock.operation_id(operation))
        .map(|id| format!("{id:?}"))
        .collect();
    if ids.is_empty() {
        "the document declares no operationId".to_owned()
    } else {
        format!("valid operation ids: {}", ids.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOCUMENT: &str = r#"{
      "openapi": "3.0.3",
      "info": {"title": "Pets", "version": "1"},
      "paths": {
        "/pets": {"get": {"operationId": "listPets", "responses": {"200": {"description": "ok"}}}},
        "/pets/{id}": {"get": {"operationId": "getPet", "responses": {"200": {"description": "ok"}}}},
        "/health": {"get": {"responses": {"200": {"description": "ok"}}}}
      }
    }"#;

    fn mock() -> Mock {
        mockforge_engine::compile(DOCUMENT, Default::default())
            .unwrap()
            .mock
    }

    #[test]
    fn listed_operation_matches() {
        let mock = mock();
        let mut filter = OperationFilter::parse(&json!(["getPet"])).unwrap();
        filter.resolve(&mock).unwrap();
        assert!(filter.matches(&mock, &Method::GET, "/pets/7"));
        assert!(!filter.matches(&mock, &Method::GET, "/pets"));
        assert!(!filter.matches(&mock, &Method::GET, "/health"));
        assert!(!filter.matches(&mock, &Method::GET, "/unknown"));
    }

    #[test]
    fn unknown_id_names_valid_ids() {
        let mut filter = OperationFilter::parse(&json!(["listPets", "deletePet"])).unwrap();
        let error = filter.resolve(&mock()).unwrap_err();
        assert!(error.starts_with("/operations/1:"), "{error}");
        assert!(error.contains("\"deletePet\""), "{error}");
        assert!(
            error.contains("valid operation ids: \"listPets\", \"getPet\""),
            "{error}"
        );
    }

    #[test]
    fn invalid_lists_are_rejected() {
        let cases = [
            (json!("getPet"), "/operations: must be an array"),
            (json!([]), "/operations: must list at least one"),
            (
                json!(["getPet", 3]),
                "/operations/1: must be a non-empty operationId string",
            ),
            (json!([""]), "/operations/0"),
        ];
        for (value, expected) in cases {
            let error = OperationFilter::parse(&value).unwrap_err();
            assert!(error.starts_with(expected), "{value}: {error}");
        }
    }
}
