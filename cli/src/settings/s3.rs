//! `[s3]`: the S3-compatible bucket for marketplace files. The bucket settings come from the
//! file or the environment, and the access keys from the environment only.

use mockforge_control_plane::s3_storage::S3StorageConfig;

use super::{Layers, RawValue};

/// Variable of the S3 access key id. Never read from the file or a flag.
pub const ACCESS_KEY_ID_VARIABLE: &str = "MOCKFORGE_S3_ACCESS_KEY_ID";
/// Variable of the S3 secret access key. Never read from the file or a flag.
pub const SECRET_ACCESS_KEY_VARIABLE: &str = "MOCKFORGE_S3_SECRET_ACCESS_KEY";

/// Returns the message for a secret found in the configuration file, or `None` for other keys.
pub fn secret_in_file(key: &str) -> Option<String> {
    let variable = match key {
        "s3.access_key_id" => ACCESS_KEY_ID_VARIABLE,
        "s3.secret_access_key" => SECRET_ACCESS_KEY_VARIABLE,
        _ => return None,
    };
    Some(format!("`{key}` is not read from the configuration file; set the {variable} environment variable instead"))
}

/// Reads the S3 settings: `None` without `s3.bucket`. `secret` returns an environment variable.
pub(super) fn s3_from(layers: &Layers, secret: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> Option<S3StorageConfig> {
    let text = |key: &'static str| layers.get(key).filter(|raw| !raw.text.trim().is_empty());
    let Some(bucket) = text("s3.bucket") else {
        for key in ["s3.endpoint", "s3.region", "s3.path_style", "s3.prefix"] {
            if let Some(raw) = text(key) {
                problems.push(format!("{}: `{key}` is set but `s3.bucket` is not; set the bucket or remove the S3 settings", raw.origin));
            }
        }
        return None;
    };

    let endpoint = text("s3.endpoint").and_then(|raw| check_endpoint(raw, problems));
    let region = text("s3.region").map_or_else(|| "us-east-1".to_owned(), |raw| raw.text.trim().to_owned());
    let path_style = match text("s3.path_style") {
        None => false,
        Some(raw) => match raw.text.trim().parse::<bool>() {
            Ok(value) => value,
            Err(_) => {
                problems.push(format!("{}: invalid value {:?}; expected true or false", raw.origin, raw.text));
                false
            }
        },
    };
    let prefix = text("s3.prefix").map(|raw| raw.text.trim().trim_matches('/').to_owned()).unwrap_or_default();

    // The keys' values are secrets, so the messages name the variables only.
    let mut key = |variable: &str| {
        let value = secret(variable).filter(|value| !value.is_empty());
        if value.is_none() {
            problems.push(format!("{}: S3 storage needs the {variable} environment variable", bucket.origin));
        }
        value.unwrap_or_default()
    };
    let access_key_id = key(ACCESS_KEY_ID_VARIABLE);
    let secret_access_key = key(SECRET_ACCESS_KEY_VARIABLE);

    Some(S3StorageConfig {
        bucket: bucket.text.trim().to_owned(),
        endpoint,
        region,
        path_style,
        prefix,
        access_key_id,
        secret_access_key,
    })
}

fn check_endpoint(raw: RawValue, problems: &mut Vec<String>) -> Option<String> {
    let text = raw.text.trim().trim_end_matches('/');
    if (text.starts_with("http://") || text.starts_with("https://")) && text.len() > "https://".len() {
        Some(text.to_owned())
    } else {
        problems.push(format!("{}: invalid value {:?}; expected an http:// or https:// URL such as http://127.0.0.1:9000", raw.origin, raw.text));
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::settings::{Profile, SettingArgs, Settings};

    fn layers(file: &[(&str, &str)]) -> Layers {
        Layers {
            overrides: BTreeMap::new(),
            file: file.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
            file_path: None,
        }
    }

    fn keys(variable: &str) -> Option<String> {
        match variable {
            ACCESS_KEY_ID_VARIABLE => Some("AKIDEXAMPLE".to_owned()),
            SECRET_ACCESS_KEY_VARIABLE => Some("secret-example".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn example_s3_section_is_valid() {
        // The section is commented out in the example, so it is read without the `# ` marks.
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/mockforge.example.toml");
        let example = std::fs::read_to_string(path).unwrap();
        let start = example.find("# [s3]\n").expect("the example has an [s3] section");
        let section: String = example[start..]
            .lines()
            .take_while(|line| line.starts_with('#'))
            .filter(|line| !line.starts_with("# #"))
            .map(|line| format!("{}\n", line.trim_start_matches("# ")))
            .collect();
        let table: toml::Table = section.parse().unwrap();
        let s3 = table["s3"].as_table().unwrap();
        let file: Vec<(String, String)> = s3
            .iter()
            .map(|(key, value)| (format!("s3.{key}"), value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
            .collect();
        assert_eq!(file.len(), 5, "{section}");
        let file: Vec<(&str, &str)> = file.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect();

        let mut problems = Vec::new();
        let config = s3_from(&layers(&file), &keys, &mut problems).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.bucket, "mockforge-artifacts");
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(config.region, "us-east-1");
        assert!(config.path_style);
        assert_eq!(config.prefix, "marketplace");
        assert_eq!(config.access_key_id, "AKIDEXAMPLE");
        assert_eq!(config.secret_access_key, "secret-example");
    }

    #[test]
    fn s3_needs_keys_from_environment() {
        let mut problems = Vec::new();
        s3_from(&layers(&[("s3.bucket", "b")]), &|_| None, &mut problems);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains(ACCESS_KEY_ID_VARIABLE), "{problems:?}");
        assert!(problems[1].contains(SECRET_ACCESS_KEY_VARIABLE), "{problems:?}");
    }

    #[test]
    fn s3_rejects_invalid_values() {
        let mut problems = Vec::new();
        let file = [("s3.bucket", "b"), ("s3.endpoint", "minio:9000"), ("s3.path_style", "yes")];
        s3_from(&layers(&file), &keys, &mut problems);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("\"minio:9000\""), "{problems:?}");
        assert!(problems[1].contains("\"yes\""), "{problems:?}");

        let mut problems = Vec::new();
        assert!(s3_from(&layers(&[("s3.prefix", "p")]), &keys, &mut problems).is_none());
        assert!(problems[0].contains("`s3.bucket` is not"), "{problems:?}");
    }

    #[test]
    fn s3_secrets_in_file_are_rejected() {
        let dir = std::env::temp_dir().join(format!("mockforge-s3-settings-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mockforge.toml");
        std::fs::write(&path, "[s3]\nbucket = \"b\"\nsecret_access_key = \"do-not-store\"\n").unwrap();
        let error = Settings::resolve(&SettingArgs { config: Some(path), ..Default::default() }, Profile::ControlPlane).unwrap_err();
        std::fs::remove_dir_all(dir).unwrap();
        let text = error.to_string();
        assert!(text.contains("`s3.secret_access_key` is not read from the configuration file"), "{text}");
        assert!(text.contains(SECRET_ACCESS_KEY_VARIABLE), "{text}");
        assert!(!text.contains("do-not-store"), "{text}");
    }
}
