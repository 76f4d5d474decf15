//! Choice of the response status and of the media type (content negotiation on `Accept`).

/// Picks the response to serve from the declared response keys: the lowest `2xx` code, else a
/// `2XX` range (served as 200), else `default` (served as 200), else the lowest declared code.
/// Returns the chosen key and the status code to send.
pub fn choose_status<'k>(keys: impl IntoIterator<Item = &'k str>) -> Option<(&'k str, u16)> {
    let mut best_success: Option<(&str, u16)> = None;
    let mut success_range: Option<&str> = None;
    let mut default: Option<&str> = None;
    let mut lowest_other: Option<(&str, u16)> = None;

    for key in keys {
        if key == "default" {
            default = Some(key);
            continue;
        }
        if key.eq_ignore_ascii_case("2XX") {
            success_range = Some(key);
            continue;
        }
        let Ok(code) = key.parse::<u16>() else {
            continue;
        };
        if !(100..=599).contains(&code) {
            continue;
        }
        if (200..300).contains(&code) {
            if best_success.is_none_or(|(_, best)| code < best) {
                best_success = Some((key, code));
            }
        } else if lowest_other.is_none_or(|(_, lowest)| code < lowest) {
            lowest_other = Some((key, code));
        }
    }

    best_success
        .or(success_range.map(|key| (key, 200)))
        .or(default.map(|key| (key, 200)))
        .or(lowest_other)
}

/// One media range from an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
struct MediaRange {
    kind: String,
    subtype: String,
    quality: f32,
}

fn parse_accept(header: &str) -> Vec<MediaRange> {
    let mut ranges = Vec::new();
    for item in header.split(',') {
        let mut fields = item.split(';');
        let essence = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        if essence.is_empty() {
            continue;
        }
        let (kind, subtype) = match essence.split_once('/') {
            Some((kind, subtype)) => (kind.trim().to_owned(), subtype.trim().to_owned()),
            // A bare `*` is sent by some clients and means any type.
            None if essence == "*" => ("*".to_owned(), "*".to_owned()),
            None => continue,
        };
        let mut quality = 1.0;
        for parameter in fields {
            if let Some((name, value)) = parameter.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    quality = value.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
                }
            }
        }
        ranges.push(MediaRange {
            kind,
            subtype,
            quality,
        });
    }
    ranges
}

/// Returns the lowercased `type/subtype` of a media type, without parameters.
pub fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Picks the index of the media type to serve from the declared ones (in document order).
/// Without an `Accept` header, or when several types have the same quality, `application/json`
/// is preferred and then the first declared type. Returns `None` when no declared type is
/// acceptable.
pub fn choose_media_type(declared: &[String], accept: Option<&str>) -> Option<usize> {
    if declared.is_empty() {
        return None;
    }
    let ranges = match accept {
        Some(header) if !header.trim().is_empty() => parse_accept(header),
        _ => Vec::new(),
    };
    let ranges = if ranges.is_empty() {
        vec![MediaRange {
            kind: "*".into(),
            subtype: "*".into(),
            quality: 1.0,
        }]
    } else {
        ranges
    };

    let mut best: Option<(usize, f32, bool)> = None;
    for (index, media_type) in declared.iter().enumerate() {
        let essence = essence(media_type);
        let Some(quality) = quality_of(&essence, &ranges) else {
            continue;
        };
        if quality <= 0.0 {
            continue;
        }
        let is_json = essence == "application/json";
        let better = match best {
            None => true,
            Some((_, best_quality, best_is_json)) => {
                quality > best_quality || (quality == best_quality && is_json && !best_is_json)
            }
        };
        if better {
            best = Some((index, quality, is_json));
        }
    }
    best.map(|(index, _, _)| index)
}

/// Returns the quality the most specific matching range gives a media type, or `None` when no
/// range matches. `application/json` does not match `application/vnd.api+json`.
fn quality_of(essence: &str, ranges: &[MediaRange]) -> Option<f32> {
    let (kind, subtype) = essence.split_once('/').unwrap_or((essence, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in ranges {
        let specificity = if range.kind == kind && range.subtype == subtype {
            3
        } else if range.kind == kind && range.subtype == "*" {
            2
        } else if range.kind == "*" && range.subtype == "*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(known, _)| specificity > known) {
            best = Some((specificity, range.quality));
        }
    }
    best.map(|(_, quality)| quality)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(types: &[&str]) -> Vec<String> {
        types.iter().map(|text| (*text).to_owned()).collect()
    }

    #[test]
    fn status_prefers_lowest_success() {
        assert_eq!(choose_status(["404", "201", "200"]), Some(("200", 200)));
        assert_eq!(choose_status(["default", "404"]), Some(("default", 200)));
        assert_eq!(choose_status(["404", "500"]), Some(("404", 404)));
        assert_eq!(choose_status(["2XX", "400"]), Some(("2XX", 200)));
        assert_eq!(choose_status([]), None);
    }

    #[test]
    fn accept_quality_orders_choice() {
        let types = declared(&["application/vnd.api+json", "application/xml"]);
        assert_eq!(
            choose_media_type(
                &types,
                Some("application/xml;q=0.9, application/vnd.api+json")
            ),
            Some(0)
        );
        assert_eq!(
            choose_media_type(
                &types,
                Some("application/vnd.api+json;q=0.5, application/xml")
            ),
            Some(1)
        );
        assert_eq!(choose_media_type(&types, None), Some(0));
        assert_eq!(choose_media_type(&types, Some("*/*")), Some(0));
        assert_eq!(choose_media_type(&types, Some("text/html")), None);
        assert_eq!(choose_media_type(&types, Some("application/json")), None);
    }

    #[test]
    fn accept_prefers_json_on_tie() {
        let types = declared(&["application/xml", "application/json; charset=utf-8"]);
        assert_eq!(choose_media_type(&types, None), Some(1));
        assert_eq!(choose_media_type(&types, Some("application/*")), Some(1));
        assert_eq!(choose_media_type(&types, Some("application/xml")), Some(0));
    }

    #[test]
    fn accept_zero_quality_excludes() {
        let types = declared(&["application/json", "text/plain"]);
        assert_eq!(
            choose_media_type(&types, Some("*/*, application/json;q=0")),
            Some(1)
        );
    }
}
