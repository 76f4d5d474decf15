//! Fixtures shared by the edge benchmarks: OpenAPI documents and snapshots built from them.
