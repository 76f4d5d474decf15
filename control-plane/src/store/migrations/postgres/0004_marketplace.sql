-- Marketplace: plugins, templates and scenarios, each a named package with immutable versions.

CREATE TABLE marketplace_packages (
    -- `plugin`, `template` or `scenario`.
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The organization that first published the name; only it may publish new versions.
    org_id UUID NOT NULL REFERENCES organizations (id),
    author TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    verified BOOLEAN NOT NULL DEFAULT FALSE,
    -- Greatest published version by semver precedence.
    latest_version TEXT NOT NULL,
    downloads_total BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE INDEX marketplace_packages_category ON marketplace_packages (kind, category);

CREATE TABLE marketplace_versions (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Hex SHA-256 of the stored file.
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    -- JSON manifest of templates and scenarios; NULL for plugins.
    manifest JSONB,
    published_by UUID NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    downloads BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, name, version),
    FOREIGN KEY (kind, name) REFERENCES marketplace_packages (kind, name)
);
