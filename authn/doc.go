// Package authn owns OpenTaco's credentials: the Ed25519 keys that sign
// access JWTs (kept in the database, published as JWKS), refresh tokens
// (hashed, rotated on every use, a reused one revokes its family), opaque
// API tokens ("otc_..."), the bootstrap admin token, and verification of
// ID tokens from an external OIDC provider.
//
// Authenticate turns any credential into a Principal; callers answer 401
// for every failure, whatever its cause. Until RBAC lands (its own issue),
// every authenticated principal has the admin role.
package authn
