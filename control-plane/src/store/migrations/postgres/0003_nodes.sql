-- Edge nodes: one row per node token, with the node's last heartbeat.

CREATE TABLE edge_nodes (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    token_prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    region TEXT,
    served_version BIGINT,
    -- JSON array of the ids of the deployments the node serves.
    deployments JSONB NOT NULL DEFAULT '[]',
    notification TEXT,
    last_heartbeat_at TIMESTAMPTZ,
    CONSTRAINT edge_nodes_name_key UNIQUE (name),
    CONSTRAINT edge_nodes_token_hash_key UNIQUE (token_hash)
);
