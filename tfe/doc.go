// Package tfe serves the Terraform Cloud API v2 subset that Terraform and
// OpenTofu use for state (the `cloud` block and the `remote` backend):
// discovery, ping, entitlements, workspaces, tags, projects, locks, state
// versions (inline and create-then-upload with signed URLs), outputs.
//
// Workspaces are units: the workspace name is the unit ID with "/" written
// "__" (store.EncodeID), its ID is "ws-" + name, and every organization
// name is accepted (organizations are labels, not containers). Tags are
// unit labels. Locks are unit locks, shared with /v1 and the http backend;
// a TFE lock is held by a principal (lock ID "tfe:<principal>") and a
// second lock is a conflict even for the same principal. Every state
// version is a unit version: "sv-<name>.v<N>"; a declared, not yet
// uploaded version is "svp-<random>" until its bytes arrive.
//
// Routes are mounted on the httpapi router under /tfe/api/v2 and /api/v2;
// errors take their status from httpapi's table and render as JSON:API
// error documents. Deterministic rejections are 4xx, never 5xx (go-tfe
// retries 5xx thirty times).
package tfe
