//! Paging of generated list responses. A page-size query parameter (such as `limit` or
//! `per_page`) sets the number of items in the list array of a generated body. Page-position
//! parameters (such as `page` or `offset`) change the generated items, so
//! `GET /pets?limit=5&page=2` returns five pets that differ from those of page 1.

use crate::generate::mix;
use crate::schema::{merge, SchemaArena, TypeSet};
use crate::validate::{parse_pairs, Location, ParameterSpec};

/// Names of page-size parameters, lowercased and without `_`, `-` and `$`.
const PAGE_SIZE_NAMES: &[&str] = &[
    "limit",
    "perpage",
    "pagesize",
    "pagelimit",
    "size",
    "maxresults",
    "maxitems",
    "top",
];

/// Names of page-position parameters, normalised like [`PAGE_SIZE_NAMES`].
const PAGE_POSITION_NAMES: &[&str] = &[
    "page",
    "pagenumber",
    "offset",
    "skip",
    "start",
    "cursor",
    "after",
    "before",
    "startingafter",
    "endingbefore",
    "pagetoken",
    "nextpagetoken",
    "continuation",
    "continue",
];

/// The maximum number of items a page-size parameter can request in one generated array. The
/// parameter's own `maximum` and the array's `maxItems` can lower it further.
pub(crate) const MAX_PAGE_LENGTH: u64 = 1000;
/// The maximum size of the generated items of one requested page, in bytes of JSON. A page
/// stops before the item that would exceed it, unless `minItems` needs that item.
pub(crate) const MAX_PAGE_BYTES: usize = 512 * 1024;

/// The paging parameters an operation declares in its query.
#[derive(Debug, Clone, Default)]
pub(crate) struct Paging {
    /// The page-size parameter's name as declared, such as `per_page`.
    page_size: Option<String>,
    /// Page-position parameters' names as declared.
    positions: Vec<String>,
}

/// The paging values of one request: the number of items, and a seed that differs per page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRequest {
    pub length: Option<u64>,
    pub seed: u64,
}

impl Paging {
    /// Finds the paging parameters among an operation's parameters. A page-size parameter must
    /// be a query parameter whose schema allows integers (or has no type).
    pub(crate) fn detect(parameters: &[ParameterSpec], arena: &SchemaArena) -> Paging {
        let mut paging = Paging::default();
        for parameter in parameters.iter().filter(|parameter| parameter.location == Location::Query) {
            let name = normalise(&parameter.name);
            if paging.page_size.is_none()
                && PAGE_SIZE_NAMES.contains(&name.as_str())
                && allows_integer(parameter, arena)
            {
                paging.page_size = Some(parameter.name.clone());
            } else if PAGE_POSITION_NAMES.contains(&name.as_str()) {
                paging.positions.push(parameter.name.clone());
            }
        }
        paging
    }

    /// Returns true when the operation declares no paging parameter.
    pub(crate) fn is_empty(&self) -> bool {
        self.page_size.is_none() && self.positions.is_empty()
    }

    /// Reads the paging parameters of one request and mixes their values into `seed`. A
    /// page size that is not a non-negative integer is ignored, because request validation
    /// reports it when the deployment validates requests.
    pub(crate) fn request(&self, query: Option<&str>, seed: u64) -> PageRequest {
        if self.is_empty() || query.is_none() {
            return PageRequest { length: None, seed };
        }
        let pairs = parse_pairs(query, '&');
        let value_of = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };

        let mut page_seed = seed;
        let length = self
            .page_size
            .as_deref()
            .and_then(value_of)
            .and_then(|value| value.trim().parse::<u64>().ok());
        if let Some(length) = length {
            page_seed = mix(page_seed, &format!("page-size={length}"));
        }
        for name in &self.positions {
            if let Some(value) = value_of(name) {
                page_seed = mix(page_seed, &format!("{name}={value}"));
            }
        }
        PageRequest {
            length,
            seed: page_seed,
        }
    }
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|character| !matches!(character, '_' | '-' | '$'))
        .map(|character| character.to_ascii_lowercase())
        .collect()
}

fn allows_integer(parameter: &ParameterSpec, arena: &SchemaArena) -> bool {
    let Some(schema) = parameter.schema else {
        return true;
    };
    let types = merge(arena, arena.resolve(schema), 0).types;
    types.is_empty() || types.contains(TypeSet::INTEGER) || types.contains(TypeSet::NUMBER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(normalise("per_page"), "perpage");
        assert_eq!(normalise("$top"), "top");
        assert_eq!(normalise("Page-Size"), "pagesize");
    }

    #[test]
    fn request_reads_declared_names() {
        let paging = Paging {
            page_size: Some("per_page".to_owned()),
            positions: vec!["page".to_owned()],
        };
        let first = paging.request(Some("per_page=5&page=1"), 7);
        let second = paging.request(Some("page=2&per_page=5"), 7);
        assert_eq!(first.length, Some(5));
        assert_eq!(second.length, Some(5));
        assert_ne!(first.seed, second.seed);
        assert_eq!(paging.request(Some("per_page=5&page=1"), 7), first);
    }

    #[test]
    fn request_ignores_invalid_sizes() {
        let paging = Paging {
            page_size: Some("limit".to_owned()),
            positions: Vec::new(),
        };
        assert_eq!(paging.request(Some("limit=ten"), 7), PageRequest { length: None, seed: 7 });
        assert_eq!(paging.request(Some("limit=-1"), 7).length, None);
        // The generator caps the page, and reports the cap, so the request keeps the length.
        assert_eq!(paging.request(Some("limit=99999"), 7).length, Some(99_999));
        assert_eq!(paging.request(None, 7), PageRequest { length: None, seed: 7 });
    }
}
