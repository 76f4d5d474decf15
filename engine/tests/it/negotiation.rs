//! `Accept` negotiation across declared media types.

use mockforge_engine::MockError;

use crate::common::{header, mock, send};

const MEDIA_DOCUMENT: &str = r##"
openapi: 3.0.3
info: {title: media, version: "1"}
paths:
  /doc:
    get:
      responses:
        "200":
          description: ok
          content:
            application/vnd.api+json:
              example: {format: jsonapi}
            application/xml:
              example: "<format>xml</format>"
"##;

fn content_type(accept: Option<&str>) -> Result<String, MockError> {
    let mock = mock(MEDIA_DOCUMENT);
    let headers: Vec<(&str, &str)> = accept
        .map(|value| vec![("accept", value)])
        .unwrap_or_default();
    send(&mock, "GET", "/doc", &headers)
        .map(|response| header(&response, "content-type").unwrap().to_owned())
}

#[test]
fn accept_quality_values_pick_type() {
    assert_eq!(
        content_type(Some("application/xml;q=0.5, application/vnd.api+json")).unwrap(),
        "application/vnd.api+json"
    );
    assert_eq!(
        content_type(Some(
            "application/vnd.api+json;q=0.4, application/xml;q=0.8"
        ))
        .unwrap(),
        "application/xml"
    );
}

#[test]
fn missing_or_wildcard_accept_gives_first() {
    assert_eq!(content_type(None).unwrap(), "application/vnd.api+json");
    assert_eq!(
        content_type(Some("*/*")).unwrap(),
        "application/vnd.api+json"
    );
    assert_eq!(
        content_type(Some("application/*;q=0.9")).unwrap(),
        "application/vnd.api+json"
    );
}

#[test]
fn unacceptable_type_lists_available() {
    match content_type(Some("text/html")) {
        Err(MockError::NotAcceptable { available, .. }) => {
            assert_eq!(
                available,
                vec![
                    "application/vnd.api+json".to_owned(),
                    "application/xml".to_owned()
                ]
            );
        }
        other => panic!("expected NotAcceptable, got {other:?}"),
    }
}

#[test]
fn json_does_not_match_vendor_json() {
    assert!(matches!(
        content_type(Some("application/json")),
        Err(MockError::NotAcceptable { .. })
    ));
}

#[test]
fn xml_example_body_is_raw_text() {
    let mock = mock(MEDIA_DOCUMENT);
    let response = send(&mock, "GET", "/doc", &[("accept", "application/xml")]).unwrap();
    assert_eq!(&response.body[..], b"<format>xml</format>");
}
