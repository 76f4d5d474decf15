//! The plugin world versions the host supports, how it detects which one a component implements,
//! and the conversions between the current world's records and those of older worlds.
//!
//! `mockforge:plugin@0.2.0` is the current world. Its request record has `route` (what 0.1.0
//! calls `operation`) and `operation-id`. A 0.1.0 component gets the request without
//! `operation-id`, and a request it returns through `modify` comes back with `operation-id`
//! none, which the edge fills in again from the modified path.

use std::fmt;

use wasmtime::component::Component;
use wasmtime::{Engine, Store};

use crate::bindings::{v0_1, v0_2};
use crate::sandbox::StoreState;
use crate::{Header, PluginError, Request, RequestAction, Response};

/// Package of the plugin worlds, as it appears in import and export names before `/`.
const PACKAGE: &str = "mockforge:plugin";

/// A version of the plugin world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorldVersion {
    /// `mockforge:plugin/plugin@0.1.0`: the request carries the matched route as `operation`
    /// and has no `operationId`.
    V0_1_0,
    /// `mockforge:plugin/plugin@0.2.0`: the request carries `route` and `operation-id`.
    V0_2_0,
}

impl WorldVersion {
    /// The supported versions, newest first.
    pub const SUPPORTED: [WorldVersion; 2] = [WorldVersion::V0_2_0, WorldVersion::V0_1_0];

    /// Returns the package version, for example `0.2.0`.
    pub fn version(self) -> &'static str {
        match self {
            WorldVersion::V0_1_0 => "0.1.0",
            WorldVersion::V0_2_0 => "0.2.0",
        }
    }

    fn from_version(version: &str) -> Option<WorldVersion> {
        WorldVersion::SUPPORTED
            .into_iter()
            .find(|world| world.version() == version)
    }
}

impl fmt::Display for WorldVersion {
    /// Writes the world's full name, for example `mockforge:plugin/plugin@0.2.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PACKAGE}/plugin@{}", self.version())
    }
}

/// Returns the supported worlds as text for error messages:
/// `mockforge:plugin/plugin@0.2.0 or mockforge:plugin/plugin@0.1.0`.
pub(crate) fn expected_worlds() -> String {
    WorldVersion::SUPPORTED.map(|world| world.to_string()).join(" or ")
}

/// Returns the world version that the names of a component's imports and exports carry, such
/// as `mockforge:plugin/types@0.2.0`, or `None` when no name is in the `mockforge:plugin`
/// package. A component built with `wit-bindgen` imports at least the `types` interface of its
/// world. Fails when the names carry an unsupported version or more than one version.
pub(crate) fn world_from_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Option<WorldVersion>, PluginError> {
    let mut found: Option<(WorldVersion, &str)> = None;
    for name in names {
        let Some(rest) = name.strip_prefix(PACKAGE).and_then(|rest| rest.strip_prefix('/')) else {
            continue;
        };
        let version = rest.split_once('@').map(|(_, version)| version);
        let Some(world) = version.and_then(WorldVersion::from_version) else {
            return Err(PluginError::Invalid(format!(
                "the component uses {name:?}, which belongs to no supported plugin world ({}), so build the plugin against one of them",
                expected_worlds()
            )));
        };
        match found {
            Some((earlier, earlier_name)) if earlier != world => {
                return Err(PluginError::Invalid(format!(
                    "the component uses both {earlier_name:?} and {name:?}, but a plugin implements exactly one supported plugin world ({})",
                    expected_worlds()
                )));
            }
            Some(_) => {}
            None => found = Some((world, name)),
        }
    }
    Ok(found.map(|(world, _)| world))
}

/// Returns the world version that `component`'s import and export names carry (see
/// [`world_from_names`]).
pub(crate) fn detect(engine: &Engine, component: &Component) -> Result<Option<WorldVersion>, PluginError> {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, _)| name);
    let exports = ty.exports(engine).map(|(name, _)| name);
    world_from_names(imports.chain(exports))
}

/// A component pre-instantiated with the bindings of its world.
pub(crate) enum WorldPre {
    V0_1(v0_1::PluginPre<StoreState>),
    V0_2(v0_2::PluginPre<StoreState>),
}

impl WorldPre {
    pub(crate) fn version(&self) -> WorldVersion {
        match self {
            WorldPre::V0_1(_) => WorldVersion::V0_1_0,
            WorldPre::V0_2(_) => WorldVersion::V0_2_0,
        }
    }

    pub(crate) async fn instantiate_async(&self, store: &mut Store<StoreState>) -> wasmtime::Result<WorldInstance> {
        match self {
            WorldPre::V0_1(pre) => pre.instantiate_async(store).await.map(WorldInstance::V0_1),
            WorldPre::V0_2(pre) => pre.instantiate_async(store).await.map(WorldInstance::V0_2),
        }
    }
}

/// An instance with the bindings of its world. Calls take and return the current world's
/// records and convert them for an older world.
pub(crate) enum WorldInstance {
    V0_1(v0_1::Plugin),
    V0_2(v0_2::Plugin),
}

impl WorldInstance {
    pub(crate) async fn call_on_request(
        &self,
        store: &mut Store<StoreState>,
        request: &Request,
        config: &str,
    ) -> wasmtime::Result<RequestAction> {
        match self {
            WorldInstance::V0_2(plugin) => plugin.call_on_request(store, request, config).await,
            WorldInstance::V0_1(plugin) => {
                let request = v0_1_request(request);
                let action = plugin.call_on_request(store, &request, config).await?;
                Ok(from_v0_1_action(action))
            }
        }
    }

    pub(crate) async fn call_on_response(
        &self,
        store: &mut Store<StoreState>,
        request: &Request,
        response: &Response,
        config: &str,
    ) -> wasmtime::Result<Option<Response>> {
        match self {
            WorldInstance::V0_2(plugin) => plugin.call_on_response(store, request, response, config).await,
            WorldInstance::V0_1(plugin) => {
                let request = v0_1_request(request);
                let response = v0_1_response(response);
                let replaced = plugin.call_on_response(store, &request, &response, config).await?;
                Ok(replaced.map(from_v0_1_response))
            }
        }
    }
}

// The 0.1.0 records own their data, so a call to a 0.1.0 component copies the request and
// response, body included, into them.

fn v0_1_headers(headers: &[Header]) -> Vec<v0_1::mockforge::plugin::types::Header> {
    headers
        .iter()
        .map(|header| v0_1::mockforge::plugin::types::Header {
            name: header.name.clone(),
            value: header.value.clone(),
        })
        .collect()
}

fn from_v0_1_headers(headers: Vec<v0_1::mockforge::plugin::types::Header>) -> Vec<Header> {
    headers
        .into_iter()
        .map(|header| Header {
            name: header.name,
            value: header.value,
        })
        .collect()
}

fn v0_1_request(request: &Request) -> v0_1::mockforge::plugin::types::Request {
    v0_1::mockforge::plugin::types::Request {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: v0_1_headers(&request.headers),
        body: request.body.clone(),
        operation: request.route.clone(),
        path_params: v0_1_headers(&request.path_params),
    }
}

fn from_v0_1_request(request: v0_1::mockforge::plugin::types::Request) -> Request {
    Request {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: from_v0_1_headers(request.headers),
        body: request.body,
        route: request.operation,
        operation_id: None,
        path_params: from_v0_1_headers(request.path_params),
    }
}

fn v0_1_response(response: &Response) -> v0_1::mockforge::plugin::types::Response {
    v0_1::mockforge::plugin::types::Response {
        status: response.status,
        headers: v0_1_headers(&response.headers),
        body: response.body.clone(),
    }
}

fn from_v0_1_response(response: v0_1::mockforge::plugin::types::Response) -> Response {
    Response {
        status: response.status,
        headers: from_v0_1_headers(response.headers),
        body: response.body,
    }
}

fn from_v0_1_action(action: v0_1::mockforge::plugin::types::RequestAction) -> RequestAction {
    use v0_1::mockforge::plugin::types::RequestAction as Legacy;
    match action {
        Legacy::Continue => RequestAction::Continue,
        Legacy::Modify(request) => RequestAction::Modify(from_v0_1_request(request)),
        Legacy::Respond(response) => RequestAction::Respond(from_v0_1_response(response)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(error: PluginError) -> String {
        match error {
            PluginError::Invalid(message) => message,
            other => panic!("expected an invalid plugin error, got {other:?}"),
        }
    }

    #[test]
    fn names_select_world() {
        let names = [
            "wasi:cli/stderr@0.2.6",
            "mockforge:plugin/types@0.1.0",
            "mockforge:plugin/host@0.1.0",
        ];
        assert_eq!(world_from_names(names).unwrap(), Some(WorldVersion::V0_1_0));
        assert_eq!(
            world_from_names(["mockforge:plugin/types@0.2.0"]).unwrap(),
            Some(WorldVersion::V0_2_0)
        );
        assert_eq!(
            world_from_names(["wasi:random/random@0.2.6", "on-request"]).unwrap(),
            None
        );
        assert_eq!(world_from_names(["mockforge:plugins/types@9.0.0"]).unwrap(), None);
    }

    #[test]
    fn names_reject_unsupported_version() {
        let text = message(world_from_names(["mockforge:plugin/types@0.3.0"]).unwrap_err());
        assert_eq!(
            text,
            "the component uses \"mockforge:plugin/types@0.3.0\", which belongs to no supported plugin world \
             (mockforge:plugin/plugin@0.2.0 or mockforge:plugin/plugin@0.1.0), so build the plugin against one of them"
        );
        let text = message(world_from_names(["mockforge:plugin/types"]).unwrap_err());
        assert!(text.contains("\"mockforge:plugin/types\""), "{text}");
    }

    #[test]
    fn names_reject_two_versions() {
        let names = ["mockforge:plugin/types@0.1.0", "mockforge:plugin/host@0.2.0"];
        let text = message(world_from_names(names).unwrap_err());
        assert_eq!(
            text,
            "the component uses both \"mockforge:plugin/types@0.1.0\" and \"mockforge:plugin/host@0.2.0\", \
             but a plugin implements exactly one supported plugin world \
             (mockforge:plugin/plugin@0.2.0 or mockforge:plugin/plugin@0.1.0)"
        );
    }

    fn pairs(headers: &[Header]) -> Vec<(&str, &str)> {
        headers
            .iter()
            .map(|header| (header.name.as_str(), header.value.as_str()))
            .collect()
    }

    #[test]
    fn legacy_request_keeps_route() {
        let request = Request {
            method: "GET".to_owned(),
            path: "/pets/1".to_owned(),
            query: Some("a=1".to_owned()),
            headers: vec![Header {
                name: "accept".to_owned(),
                value: "*/*".to_owned(),
            }],
            body: b"{}".to_vec(),
            route: Some("GET /pets/{petId}".to_owned()),
            operation_id: Some("getPet".to_owned()),
            path_params: vec![Header {
                name: "petId".to_owned(),
                value: "1".to_owned(),
            }],
        };
        let legacy = v0_1_request(&request);
        assert_eq!(legacy.operation.as_deref(), Some("GET /pets/{petId}"));
        assert_eq!(legacy.path_params[0].value, "1");

        let back = from_v0_1_request(legacy);
        assert_eq!(back.route, request.route);
        assert_eq!(back.operation_id, None);
        assert_eq!(back.method, request.method);
        assert_eq!(back.path, request.path);
        assert_eq!(back.query, request.query);
        assert_eq!(pairs(&back.headers), pairs(&request.headers));
        assert_eq!(back.body, request.body);
        assert_eq!(pairs(&back.path_params), pairs(&request.path_params));
    }
}
