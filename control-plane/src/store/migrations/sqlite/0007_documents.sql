-- OpenAPI documents, content-addressed by the hex SHA-256 of their text, so every control-plane
-- replica on this database reads the documents any replica stored. Deployments refer to a
-- document through deployments.document_sha256 without a foreign key: a deleted deployment keeps
-- its hash after the document is removed.
CREATE TABLE documents (
    sha256 TEXT PRIMARY KEY NOT NULL,
    body TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
